"""A minimal IRC client for the end-to-end scripts: it registers, answers
PING, records every line it reads and waits, with a deadline, for a line a
predicate accepts. What it reads and writes is printed (irc< and irc>), so
that a failure shows the IRC side of the story."""

import asyncio

import xmpp_common as xc


class Line:
    """One parsed IRC line: prefix, command, params (the trailing one last)."""

    def __init__(self, raw):
        self.raw = raw
        line = raw
        self.prefix = ""
        if line.startswith("@"):
            _, _, line = line.partition(" ")  # message tags: not used here
        if line.startswith(":"):
            self.prefix, _, line = line[1:].partition(" ")
        head, sep, trailing = line.partition(" :")
        params = head.split()
        self.command = params.pop(0).upper() if params else ""
        if sep:
            params.append(trailing)
        self.params = params

    @property
    def nick(self):
        """The nick of the prefix, "" for a server."""
        return self.prefix.split("!", 1)[0] if "!" in self.prefix else ""

    def param(self, i):
        return self.params[i] if i < len(self.params) else ""

    def __repr__(self):
        return self.raw


class IRC:
    """One registered client of an IRC server."""

    def __init__(self, reader, writer, label):
        self.r, self.w = reader, writer
        self.label = label
        self.lines = []
        self._changed = asyncio.Event()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, host, port, nick, password=None):
        r, w = await asyncio.open_connection(host, port)
        irc = cls(r, w, nick)
        if password:
            irc.send("PASS %s" % password)
        irc.send("NICK %s" % nick)
        irc.send("USER %s 0 * :%s" % (nick, nick))
        await irc.wait(lambda l: l.command == "001", "registration (001)", timeout=30)
        return irc

    async def _read(self):
        while True:
            raw = await self.r.readline()
            if not raw:
                self._closed = True
                self._changed.set()
                return
            text = raw.decode(errors="replace").rstrip("\r\n")
            print("%s irc< %s" % (self.label, text), flush=True)
            line = Line(text)
            if line.command == "PING":
                self.send("PONG :%s" % line.param(0))
                continue
            self.lines.append(line)
            self._changed.set()

    def send(self, text):
        print("%s irc> %s" % (self.label, text), flush=True)
        self.w.write((text + "\r\n").encode())

    def mark(self):
        """A position in what was read, for since=."""
        return len(self.lines)

    async def wait(self, pred, what, since=0, timeout=30.0):
        """Waits for a line read after mark since that pred accepts. The
        deadline is generous: ngircd handles three commands a second of
        each client and makes the others wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for l in self.lines[since:]:
                if pred(l):
                    return l
            if self._closed:
                raise xc.CheckFailed("%s: the IRC connection closed while waiting for %s" % (self.label, what))
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = "\n  ".join(l.raw for l in self.lines[since:]) or "(nothing)"
                raise xc.CheckFailed("%s: no %s on IRC within %.0f s; read since:\n  %s" % (self.label, what, timeout, got))
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def ison(self, nick, present, timeout=30.0):
        """Asks the server with ISON, once a second, until nick is online
        (present) or not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = self.mark()
            self.send("ISON %s" % nick)
            l = await self.wait(lambda l: l.command == "303", "the answer to ISON %s" % nick, since=m)
            online = nick.lower() in [n.lower() for n in l.param(1).split()]
            if online == present:
                return
            if loop.time() > deadline:
                raise xc.CheckFailed("%s: %s still %s on IRC after %.0f s" % (
                    self.label, nick, "absent" if present else "present", timeout))
            await asyncio.sleep(1)

    async def close(self):
        if not self._closed:
            self.send("QUIT :done")
        self.w.close()
        self._task.cancel()


def privmsg(frm, target, text):
    """A predicate: a PRIVMSG from nick frm to target with text."""
    return lambda l: l.command == "PRIVMSG" and l.nick.lower() == frm.lower() \
        and l.param(0).lower() == target.lower() and l.param(1) == text


def action(text):
    """The CTCP ACTION of an emote."""
    return "\x01ACTION %s\x01" % text
