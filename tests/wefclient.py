"""The Windows side of Windows Event Forwarding, for the tests: what a DC's WinRM client with the
Eventlog-ForwardingPlugin sends to a collector and how it reads the replies.

Written from the specifications (DSP0226 WS-Management, MS-WSMV, WS-Eventing/Enumeration, ECMA-321)
and from the real messages in ../shared/reference/wef-samples (the envelope layouts below are those
captures' layouts, one line, UTF-16LE with a BOM), not from dcsentry's server code. Like Windows it
enumerates on one connection (Enumerate, End), then delivers each subscription on its own
keep-alive connection to the subscription's NotifyTo address (Events with a bookmark and
AckRequested, Heartbeat when idle, SubscriptionEnd), and keeps its bookmark where the collector's
Ack leaves it.
"""

from __future__ import annotations

import codecs
import http.client
import ssl
from urllib.parse import urlsplit

from wefclient_soap import (  # noqa: F401  (re-exported: the tests import them from here)
    _HEAD, _SAFE, ANON, NS, Event, Reply, Subscription, evtx_events, msg_id, parse_subscriptions,
    sldc_compress,
)


class WefClient:
    """One forwarding source (e.g. a DC) talking HTTPS with its client certificate."""

    def __init__(self, manager_url: str, context: ssl.SSLContext | None, machine_id: str) -> None:
        self.manager_url = manager_url
        self.context = context
        self.machine_id = machine_id
        self.operation = msg_id()
        self.conn: http.client.HTTPConnection | None = None

    # transport --------------------------------------------------------------------------------------
    def connect(self, url: str) -> http.client.HTTPConnection:
        u = urlsplit(url)
        if u.scheme.lower() == "https":
            return http.client.HTTPSConnection(u.hostname, u.port, context=self.context, timeout=30)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def post(self, conn: http.client.HTTPConnection, url: str, xml: str, compress: bool = False) -> Reply:
        body = codecs.BOM_UTF16_LE + xml.encode("utf-16-le")
        headers = {"Content-Type": "application/soap+xml;charset=UTF-16", "User-Agent": "Microsoft WinRM Client",
                   "Connection": "Keep-Alive"}
        if compress:
            body = sldc_compress(body)
            headers["Content-Encoding"] = "SLDC"
        conn.request("POST", urlsplit(url).path, body=body, headers=headers)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())

    # conversation -----------------------------------------------------------------------------------
    def _header(self, to: str, action: str, mid: str, extra: str = "", resource: str | None = None) -> str:
        res = f'<w:ResourceURI s:mustUnderstand="true">{resource}</w:ResourceURI>' if resource else ""
        return (f"<s:Header><a:To>{to}</a:To>{res}"
                f'<m:MachineID xmlns:m="http://schemas.microsoft.com/wbem/wsman/1/machineid" '
                f's:mustUnderstand="false">{self.machine_id}</m:MachineID>'
                f'<a:ReplyTo><a:Address s:mustUnderstand="true">{ANON}</a:Address></a:ReplyTo>'
                f'<a:Action s:mustUnderstand="true">{action}</a:Action>'
                f'<w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize><a:MessageID>{mid}</a:MessageID>'
                f'<w:Locale xml:lang="en-US" s:mustUnderstand="false"/><p:DataLocale xml:lang="en-US" '
                f's:mustUnderstand="false"/><p:SessionId s:mustUnderstand="false">{self.operation}</p:SessionId>'
                f'<p:OperationID s:mustUnderstand="false">{msg_id()}</p:OperationID>'
                f'<p:SequenceId s:mustUnderstand="false">1</p:SequenceId>'
                f"<w:OperationTimeout>PT60.000S</w:OperationTimeout>{extra}</s:Header>")

    def enumerate(self) -> tuple[Reply, list[Subscription], Reply]:
        """Enumerate then End on one connection, as the WinRM client does at each Refresh."""
        conn = self.connect(self.manager_url)
        mid = msg_id()
        xml = (_HEAD + self._header(self.manager_url, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
                                    mid, resource="http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription")
               + "<s:Body><n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>32000</w:MaxElements></n:Enumerate>"
               "</s:Body></s:Envelope>")
        reply = self.post(conn, self.manager_url, xml)
        subs = parse_subscriptions(reply.body) if reply.status == 200 else []
        end = (_HEAD + f"<s:Header><a:To>{ANON}</a:To><w:ResourceURI s:mustUnderstand=\"true\">"
               "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex</w:ResourceURI>"
               '<a:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/wsman/End</a:Action>'
               f"<a:MessageID>{msg_id()}</a:MessageID><p:OperationID>{mid}</p:OperationID></s:Header>"
               "<s:Body></s:Body></s:Envelope>")
        ended = self.post(conn, self.manager_url, end)
        conn.close()
        return reply, subs, ended

    def _delivery_conn(self, sub: Subscription) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = self.connect(sub.address)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def bookmark(self, sub: Subscription, positions: dict[str, int]) -> str:
        marks = "".join(f'<Bookmark Channel="{ch}" RecordId="{rid}" IsCurrent="true"/>' for ch, rid in positions.items())
        return f"<BookmarkList>{marks}</BookmarkList>"

    def events_xml(self, sub: Subscription, events: list[Event], positions: dict[str, int], mid: str) -> str:
        extra = (f'<e:Identifier xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing">{sub.identifier}</e:Identifier>'
                 f"<w:Bookmark>{self.bookmark(sub, positions)}</w:Bookmark><w:AckRequested/>")
        items = "".join(f'<w:Event Action="http://schemas.dmtf.org/wbem/wsman/1/wsman/Event"><![CDATA[{e.xml}]]></w:Event>'
                        for e in events)
        return (_HEAD + self._header(sub.address, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events", mid, extra)
                + f"<s:Body><w:Events>{items}</w:Events></s:Body></s:Envelope>")

    def deliver(self, sub: Subscription, events: list[Event]) -> Reply:
        """One Events batch; the bookmark moves only when the collector acknowledges it."""
        positions = dict(sub.positions)
        for e in events:
            positions[e.channel] = max(positions.get(e.channel, 0), e.record_id)
        mid = msg_id()
        reply = self.post(self._delivery_conn(sub), sub.address, self.events_xml(sub, events, positions, mid),
                          compress=sub.compressed)
        if reply.status == 200 and reply.action() == "http://schemas.dmtf.org/wbem/wsman/1/wsman/Ack" \
                and reply.relates_to() == mid:
            sub.positions = positions
        return reply

    def deliver_all(self, sub: Subscription, events: list[Event]) -> None:
        """Every batch acknowledged, then a heartbeat answered: a client's ordinary round."""
        for batch in self.batches(sub, events):
            reply = self.deliver(sub, batch)
            assert reply.status == 200 and reply.action() == "http://schemas.dmtf.org/wbem/wsman/1/wsman/Ack"
        hb, mid = self.heartbeat(sub)
        assert hb.status == 200 and hb.relates_to() == mid

    def pending(self, sub: Subscription, events: list[Event]) -> list[Event]:
        """What a resumed subscription still has to send: after the bookmark, in its channels."""
        return [e for e in events if e.channel in sub.channels and e.record_id > sub.positions.get(e.channel, 0)]

    def batches(self, sub: Subscription, events: list[Event]) -> list[list[Event]]:
        """Split like Windows: each envelope stays under the subscription's MaxEnvelopeSize (UTF-16)."""
        out: list[list[Event]] = [[]]
        size = 4096
        for e in events:
            cost = 2 * len(e.xml) + 200
            if out[-1] and size + cost > sub.max_envelope:
                out.append([])
                size = 4096
            out[-1].append(e)
            size += cost
        return [b for b in out if b]

    def heartbeat(self, sub: Subscription) -> tuple[Reply, str]:
        mid = msg_id()
        extra = (f'<e:Identifier xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing">{sub.identifier}</e:Identifier>'
                 "<w:AckRequested/>")
        xml = (_HEAD + self._header(sub.address, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Heartbeat", mid, extra)
               + "<s:Body><w:Events></w:Events></s:Body></s:Envelope>")
        return self.post(self._delivery_conn(sub), sub.address, xml, compress=sub.compressed), mid

    def subscription_end(self, sub: Subscription, text: str) -> Reply:
        mid = msg_id()
        extra = (f'<e:Identifier xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing">{sub.identifier}</e:Identifier>'
                 "<w:AckRequested/>")
        body = ("<s:Body><e:SubscriptionEnd><e:SubscriptionManager>"
                f"<a:Address>{sub.end_to}</a:Address><a:ReferenceProperties><e:Identifier>{msg_id()[5:]}</e:Identifier>"
                "</a:ReferenceProperties></e:SubscriptionManager>"
                "<e:Status>http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling</e:Status>"
                '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="1717" '
                f'Machine="{self.machine_id}"><f:Message><f:ProviderFault provider="Unknown provider" '
                f'path="Unknown path"><t:ProviderError xmlns:t="http://schemas.microsoft.com/wbem/wsman/1/windows/'
                f'EventLog">{text}</t:ProviderError></f:ProviderFault></f:Message></f:WSManFault>'
                "</e:SubscriptionEnd></s:Body></s:Envelope>")
        xml = _HEAD + self._header(sub.end_to, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd",
                                   mid, extra) + body
        return self.post(self._delivery_conn(sub), sub.end_to, xml)


# -- certificates: the collector's, and each DC's machine certificate ---------------------------------

def make_wef_pki(d, clients: list[str]) -> dict:
    """A CA, the collector's server certificate (localhost), one client certificate per name in
    `clients` (CN = the name, as a DC's machine certificate), an expired one and one from another CA.
    Returns name -> path (`ca`, `server`, `server_key`, `client:<cn>`, `client:<cn>_key`, ...)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from pki import _cert, save_pem

    files: dict = {}

    def save(name: str, cert, key=None) -> None:
        save_pem(files, d, name, cert, key)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    ca_key, other_key = key(), key()
    ca = _cert("dcsentry WEF test CA", ca_key, None, ca=True)
    other = _cert("someone else's CA", other_key, None, ca=True)
    save("ca", ca)
    save("other_ca", other)
    k = key()
    save("server", _cert("localhost", k, (ca, ca_key), server=True), k)
    for cn in clients:
        k = key()
        save(f"client:{cn}", _cert(cn, k, (ca, ca_key)), k)
    k = key()
    save("expired", _cert(clients[0], k, (ca, ca_key), days=(-30, -1)), k)
    k = key()
    save("rogue", _cert(clients[0], k, (other, other_key)), k)
    return files


def client_context(files: dict, name: str) -> ssl.SSLContext:
    """What the DC's WinRM client presents: its certificate, trusting the collector's CA."""
    ctx = ssl.create_default_context(cafile=str(files["ca"]))
    ctx.load_cert_chain(str(files[name]), str(files[name + "_key"]))
    return ctx
