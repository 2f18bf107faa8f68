"""Presence subscriptions (RFC 6121 §3): two users subscribe to each other
step by step, every roster push is checked, each then sees the other
available and, when one logs out, unavailable. Then a request sent to a
user who is offline is kept and delivered when that user logs in."""

import asyncio

import im_common as im
import xmpp_common as xc


def collapse(pushes):
    """The sequence of states the pushes announce; a push repeating the
    state before it adds nothing a client could see."""
    out = []
    for p in pushes:
        if not out or out[-1] != p.state():
            out.append(p.state())
    return out


async def mutual(args, pw):
    alice_jid, bob_jid = args.user[0][0], args.user[1][0]
    alice = await im.Session(args, alice_jid, pw[alice_jid]).start()
    bob = await im.Session(args, bob_jid, pw[bob_jid]).start()
    xc.check(bob_jid not in alice.roster, "alice's roster already lists bob: %s" % alice.roster)
    xc.check(alice_jid not in bob.roster, "bob's roster already lists alice: %s" % bob.roster)

    # 1. alice asks: her item for bob is none + ask; bob sees the request.
    alice.presence_to(bob_jid, "subscribe")
    await alice.pushes.wait_count(1, "push after subscribe")
    await bob.presences.wait_for(im.from_bare(alice_jid, "subscribe"), "subscribe from alice")
    print("bob got alice's subscription request", flush=True)

    # 2. bob approves: his item for alice becomes from, hers for bob to,
    # and she receives his presence.
    bob.presence_to(alice_jid, "subscribed")
    await bob.pushes.wait_count(1, "push after approving alice")
    await alice.presences.wait_for(im.from_bare(bob_jid, "subscribed"), "subscribed from bob")
    await alice.pushes.wait_for(lambda p: p.subscription == "to", "push with subscription to")
    await alice.presences.wait_for(
        lambda p: p["from"] == bob.jid and p["type"] == "available", "bob's available presence")
    print("alice is subscribed to bob and sees him available", flush=True)

    # 3. bob asks back: his item becomes from + ask.
    bob.presence_to(alice_jid, "subscribe")
    await bob.pushes.wait_count(2, "push after subscribing to alice")
    await alice.presences.wait_for(im.from_bare(bob_jid, "subscribe"), "subscribe from bob")

    # 4. alice approves: both items become both, and bob sees alice.
    alice.presence_to(bob_jid, "subscribed")
    await alice.pushes.wait_for(lambda p: p.subscription == "both", "push with subscription both")
    await bob.pushes.wait_count(3, "push after alice approved")
    await bob.presences.wait_for(im.from_bare(alice_jid, "subscribed"), "subscribed from alice")
    await bob.presences.wait_for(
        lambda p: p["from"] == alice.jid and p["type"] == "available", "alice's available presence")
    print("bob is subscribed to alice and sees her available", flush=True)

    print("alice's pushes: %s" % alice.pushes.items, flush=True)
    print("bob's pushes: %s" % bob.pushes.items, flush=True)
    want_alice = [(bob_jid, "none", "subscribe"), (bob_jid, "to", ""), (bob_jid, "both", "")]
    want_bob = [(alice_jid, "from", ""), (alice_jid, "from", "subscribe"), (alice_jid, "both", "")]
    xc.check(collapse(alice.pushes.items) == want_alice,
             "alice's pushes announce %s, want %s" % (collapse(alice.pushes.items), want_alice))
    xc.check(collapse(bob.pushes.items) == want_bob,
             "bob's pushes announce %s, want %s" % (collapse(bob.pushes.items), want_bob))
    for s in (alice, bob):
        vers = [p.ver for p in s.pushes.items]
        xc.check(all(vers), "%s: a push without a roster version: %s" % (s.name, s.pushes.items))

    xc.check((await alice.get_roster()).get(bob_jid) == ("both", ""), "alice's roster: %s" % await alice.get_roster())
    xc.check((await bob.get_roster()).get(alice_jid) == ("both", ""), "bob's roster: %s" % await bob.get_roster())

    # 5. bob leaves: alice sees his resource go unavailable.
    bob_full = bob.jid.full
    await bob.close()
    await alice.presences.wait_for(
        lambda p: p["from"].full == bob_full and p["type"] == "unavailable", "bob's unavailable presence")
    print("alice saw bob go unavailable", flush=True)
    await alice.close()


async def pending(args, pw):
    carol_jid, dave_jid = args.user[2][0], args.user[3][0]
    carol = await im.Session(args, carol_jid, pw[carol_jid]).start()
    carol.presence_to(dave_jid, "subscribe")
    p = (await carol.pushes.wait_count(1, "push after subscribe"))[0]
    xc.check(p.state() == (dave_jid, "none", "subscribe"), "carol's push: %s" % p)
    await carol.close()
    print("carol asked dave, who is offline, and logged out", flush=True)

    dave = await im.Session(args, dave_jid, pw[dave_jid]).start()
    await dave.presences.wait_for(im.from_bare(carol_jid, "subscribe"), "stored subscribe from carol")
    print("dave got carol's request at login", flush=True)
    # The request alone is not a roster item (RFC 6121 §3.1.3).
    xc.check(carol_jid not in dave.roster, "dave's roster lists carol before approving: %s" % dave.roster)
    dave.presence_to(carol_jid, "subscribed")
    p = (await dave.pushes.wait_count(1, "push after approving carol"))[0]
    xc.check(p.state() == (carol_jid, "from", ""), "dave's push: %s" % p)
    await dave.close()

    # carol was offline when dave approved; her roster has it anyway.
    carol = await im.Session(args, carol_jid, pw[carol_jid]).start(presence=False)
    xc.check(carol.roster.get(dave_jid) == ("to", ""),
             "carol's roster after dave approved offline: %s" % carol.roster)
    print("carol's roster shows the approval made while she was away", flush=True)
    await carol.close()


async def main(args):
    xc.check(len(args.user) == 4, "want four --user: alice, bob, carol, dave")
    pw = im.passwords(args)
    await mutual(args, pw)
    await pending(args, pw)


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    args = p.parse_args()
    im.run(main, args)
