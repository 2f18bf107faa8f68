"""Users of a split server spread over two gateways (odd ones on --port,
even ones on --to-port) while the membership of its session manager
instances changes. Every user subscribes to every other and sees them
online; then in rounds every user sends a numbered message to the next
user (a ring). At the rounds of --mark ROUND:NAME it prints NAME (the
test then changes the cluster). At the end it checks that every message
arrived exactly once, that no stanza came back as an error, that a new
presence of every user reaches every other, and that a new resource of
the first user gets the presence of every other user."""

import argparse
import asyncio

import slixmpp

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    users = args.users.split(",")
    dom = args.domain
    jids = ["%s@%s" % (u, dom) for u in users]
    clients = {}
    got = {j: {} for j in jids}  # receiver -> {(sender, n): count}
    errors = []
    online = {j: set() for j in jids}
    final = {j: set() for j in jids}
    all_online = loop.create_future()

    def port_of(i):
        return args.port if i % 2 == 0 else args.to_port

    for i, j in enumerate(jids):
        a = argparse.Namespace(**vars(args))
        a.port = port_of(i)
        c = xc.Client(a, j, args.password)
        x = c.xmpp
        x.auto_authorize = True
        x.auto_subscribe = True

        def on_message(msg, me=j):
            if msg["type"] == "error":
                errors.append(str(msg))
                return
            body = msg["body"]
            if not body.startswith("n="):
                return
            n = int(body[2:])
            key = (msg["from"].bare, n)
            got[me][key] = got[me].get(key, 0) + 1

        def on_presence(p, me=j):
            if p["type"] == "error":
                errors.append(str(p))
                return
            frm = p["from"].bare
            if frm == me or frm not in online:
                return
            if p["type"] in ("available", "", "chat", "away", "dnd", "xa") and p["type"] != "unavailable":
                online[me].add(frm)
                if p["status"] == "final":
                    final[me].add(frm)
            if all(len(online[k]) == len(jids) - 1 for k in jids) and not all_online.done():
                all_online.set_result(True)

        x.add_event_handler("message", on_message)
        x.add_event_handler("presence", on_presence)
        await c.start()
        clients[j] = c

    for i, j in enumerate(jids):
        for k in jids[i + 1:]:
            clients[j].xmpp.send_presence(pto=k, ptype="subscribe")
    await asyncio.wait_for(all_online, 30)
    print("presence: every user sees every other online", flush=True)

    marks = {}
    for m in args.mark:
        r, name = m.split(":", 1)
        marks[int(r)] = name
    for n in range(1, args.rounds + 1):
        for i, j in enumerate(jids):
            to = jids[(i + 1) % len(jids)]
            clients[j].xmpp.send_message(mto=to, mbody="n=%d" % n, mtype="chat")
        if n in marks:
            print(marks[n], flush=True)
        await asyncio.sleep(args.interval)

    def missing():
        out = []
        for i, j in enumerate(jids):
            to = jids[(i + 1) % len(jids)]
            out += ["%s>%s:%d" % (j, to, n) for n in range(1, args.rounds + 1) if (j, n) not in got[to]]
        return out

    for _ in range(int(args.settle * 10)):
        if not missing():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # late duplicates would arrive now
    lost = missing()
    dups = ["%s>%s:%d" % (s, r, n) for r in jids for (s, n), c in got[r].items() if c > 1]
    print("messages: sent %d lost %d %s duplicates %s errors %d" %
          (args.rounds * len(jids), len(lost), lost[:20], dups[:20], len(errors)), flush=True)
    for e in errors[:5]:
        print("error stanza: %s" % e, flush=True)
    xc.check(not lost and not dups and not errors, "messages not delivered exactly once, or bounced")

    # Presence after the moves: a new presence of every user reaches every
    # other, through whichever instance owns each now.
    everyone_final = loop.create_future()

    def check_final(_=None):
        if all(len(final[k]) == len(jids) - 1 for k in jids) and not everyone_final.done():
            everyone_final.set_result(True)

    for j in jids:
        clients[j].xmpp.add_event_handler("presence", check_final)
    for j in jids:
        clients[j].xmpp.send_presence(pstatus="final")
    try:
        await asyncio.wait_for(everyone_final, 20)
    except asyncio.TimeoutError:
        short = {k: sorted(set(jids) - final[k] - {k}) for k in jids if len(final[k]) != len(jids) - 1}
        xc.check(False, "new presences not seen: %s" % short)
    print("presence: every user sees every other's new presence", flush=True)

    # A new resource of the first user is told who is online (probes
    # answered by the instances that own the others now).
    a = argparse.Namespace(**vars(args))
    a.port = port_of(1)
    probe = xc.Client(a, jids[0] + "/probe", args.password)
    seen = set()
    probed = loop.create_future()

    def on_probe_presence(p):
        frm = p["from"].bare
        if frm != jids[0] and p["type"] != "unavailable" and p["status"] == "final":
            seen.add(frm)
        if len(seen) == len(jids) - 1 and not probed.done():
            probed.set_result(True)

    probe.xmpp.add_event_handler("presence", on_probe_presence)
    await probe.start()
    try:
        await asyncio.wait_for(probed, 20)
    except asyncio.TimeoutError:
        xc.check(False, "a new resource sees only %s online" % sorted(seen))
    print("presence: a new resource sees every other user online", flush=True)
    await probe.close()
    for c in clients.values():
        await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--to-port", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--users", required=True, help="local parts, comma-separated")
    p.add_argument("--password", required=True)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--mark", action="append", default=[], help="ROUND:NAME, printed after that round")
    p.add_argument("--settle", type=float, default=40)
    xc.run(main, p.parse_args())
