"""A fake mesh peer in Python for the end-to-end scripts: netceptor messages (routing updates,
service adverts) in the TCP backend's framing (2-byte little-endian length, then the message),
per /work/shared/spec/netceptor.md sections 2.2, 3.3, 3.4 and 4.2.

A `Peer` connects to a node's tcp-listener, sends its handshake update, then an update that
lists the node (so the session is established on both sides), and keeps it alive with a new
update every few seconds (`keepalive`). What the node sends is read and dropped by a `Drain`.
"""
import json, random, selectors, socket, struct, threading, time

MSG_ROUTE = 1
MSG_SERVICE_AD = 2


def frame(msg):
    """One message in the stream backends' framing."""
    assert 0 < len(msg) <= 65535
    return struct.pack("<H", len(msg)) + msg


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def route_update(node, forwarding, connections, update_id, epoch, seq):
    """A routing update (type 1) from `node`, put on the link by `forwarding`."""
    return bytes([MSG_ROUTE]) + _json({
        "NodeID": node, "UpdateID": update_id, "UpdateEpoch": epoch, "UpdateSequence": seq,
        "Connections": connections, "ForwardingNode": forwarding, "SuspectedDuplicate": 0})


def service_ad(node, service, when):
    """A stream service advertisement (type 2) of `service` on `node`, timed `when` (RFC 3339)."""
    return bytes([MSG_SERVICE_AD]) + _json({
        "NodeID": node, "Service": service, "Time": when, "ConnType": 1,
        "Tags": {"type": "flood"}, "WorkCommands": None, "Cancel": False})


def new_epoch():
    return int(time.time()) * (1 << 24) + random.randrange(1 << 24)


class Peer:
    """One established session with a node, from a made-up node `name`."""

    def __init__(self, addr, name, node_id):
        self.name, self.node_id = name, node_id
        self.epoch, self.seq, self.ids = new_epoch(), 0, 0
        self.lock = threading.Lock()
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Handshake: an update listing nothing, then one listing the node (cost 1).
        self.send(frame(self.own_update({})) + frame(self.own_update({node_id: 1})))

    def update_id(self):
        self.ids += 1
        return f"{self.ids:08d}"[-8:]

    def own_update(self, connections):
        self.seq += 1
        return route_update(self.name, self.name, connections, self.update_id(), self.epoch, self.seq)

    def keepalive(self):
        """A fresh update of our own: the node's idle timer (21 s) starts again."""
        self.send(frame(self.own_update({self.node_id: 1})))

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Drain(threading.Thread):
    """Reads and drops whatever arrives on the sockets given to `add`, and sends every
    peer's keepalive every `interval` seconds, until `stop`."""

    def __init__(self, interval=7.0):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.peers, self.interval, self.done = [], interval, False
        self.lock = threading.Lock()
        self.start()

    def add(self, peer):
        with self.lock:
            self.peers.append(peer)
            peer.sock.setblocking(True)
            self.sel.register(peer.sock, selectors.EVENT_READ, peer)

    def remove_all(self):
        with self.lock:
            for p in self.peers:
                try:
                    self.sel.unregister(p.sock)
                except (KeyError, ValueError):
                    pass
            peers, self.peers = self.peers, []
        return peers

    def stop(self):
        self.done = True

    def run(self):
        next_keepalive = time.time() + self.interval
        while not self.done:
            with self.lock:
                events = self.sel.select(0.05) if self.peers else []
                for key, _ in events:
                    try:
                        if not key.fileobj.recv(1 << 16):
                            self.sel.unregister(key.fileobj)
                    except OSError:
                        self.sel.unregister(key.fileobj)
                if time.time() >= next_keepalive:
                    next_keepalive = time.time() + self.interval
                    for p in self.peers:
                        try:
                            p.keepalive()
                        except OSError:
                            pass
            if not events:
                time.sleep(0.01)
