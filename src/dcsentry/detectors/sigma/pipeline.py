"""Where Sigma's vocabulary meets dcsentry's event model: logsources, field names, the regex engine.

One pySigma processing pipeline does the mapping, so a rule is rewritten the way every Sigma
backend rewrites it: a `product: windows` + `service: X` logsource becomes a `Channel` condition
(which the matcher then uses as an index key), and the few field names that differ between Sigma
conventions and our `WindowsEvent` are renamed. Everything else is the EventData `Name` as Windows
writes it (`ImagePath` in a 7045, `ServiceFileName` in a 4697; ../shared/reference/events.md),
which is what SigmaHQ's Windows rules already use, whatever format carried the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.policy import SigmaPolicy
from sigma.policy.regex_engine import RegexEngine
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, FieldMappingTransformation

from ...catalogue import NTLM_CHANNEL
from ...model import WindowsEvent

# `service:` of a `product: windows` rule -> the channel(s) it reads (SigmaHQ's logsource guide,
# the same table pySigma's Windows pipeline uses). security/system/ntlm are the channels
# dcsentry is built for; the others cost nothing to map and let site rules run on what a WEF or
# syslog feed also carries.
SERVICES: dict[str, tuple[str, ...]] = {
    "security": ("Security",),
    "system": ("System",),
    "ntlm": (NTLM_CHANNEL,),
    "application": ("Application",),
    "powershell": ("Microsoft-Windows-PowerShell/Operational",),
    "powershell-classic": ("Windows PowerShell",),
    "sysmon": ("Microsoft-Windows-Sysmon/Operational",),
    "taskscheduler": ("Microsoft-Windows-TaskScheduler/Operational",),
    "wmi": ("Microsoft-Windows-WMI-Activity/Operational",),
    "dns-server": ("DNS Server",),
    "driver-framework": ("Microsoft-Windows-DriverFrameworks-UserMode/Operational",),
    "firewall-as": ("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",),
    "bits-client": ("Microsoft-Windows-Bits-Client/Operational",),
    "codeintegrity-operational": ("Microsoft-Windows-CodeIntegrity/Operational",),
    "terminalservices-localsessionmanager": ("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",),
    "windefend": ("Microsoft-Windows-Windows Defender/Operational",),
}

# Field names other tools write for the System section -> ours (Chainsaw's/Hayabusa's spelling is
# already ours). EventData names are never renamed.
FIELD_ALIASES: dict[str | None, str | list[str]] = {
    "ProviderName": "Provider_Name",
    "Provider": "Provider_Name",
    "SourceName": "Provider_Name",
    "EventId": "EventID",
    "Hostname": "Computer",
    "ComputerName": "Computer",
    "RecordNumber": "EventRecordID",
    "UserID": "SecurityUserID",
}


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


# The System section, read straight from the record (no per-event dict is built).
SYSTEM_FIELDS: dict[str, Callable[[WindowsEvent], str | None]] = {
    "EventID": lambda ev: str(ev.event_id),
    "Channel": lambda ev: ev.channel,
    "Provider_Name": lambda ev: ev.provider,
    "Computer": lambda ev: ev.computer,
    "Keywords": lambda ev: ev.keywords,
    "Level": lambda ev: _opt(ev.level),
    "Task": lambda ev: _opt(ev.task),
    "EventRecordID": lambda ev: _opt(ev.record_id),
    "SecurityUserID": lambda ev: ev.user_sid,
}


def logsource_problem(product: str | None, category: str | None, service: str | None) -> str | None:
    """Why a rule's logsource cannot be read from Windows event logs as dcsentry has them, or None."""
    if (product or "").lower() != "windows":
        return f"logsource product {product!r} is not windows"
    if category:
        return (f"logsource category {category!r} needs a Sysmon/EDR category mapping, which dcsentry does not "
                f"have (it reads Windows event log channels: use service:)")
    if service is not None and service.lower() not in SERVICES:
        return f"logsource service {service!r} names no channel dcsentry knows ({', '.join(sorted(SERVICES))})"
    return None


class QuietRE2(RegexEngine):
    """pySigma's RE2 engine without the C++ library logging every bad pattern to stderr."""

    def __init__(self) -> None:
        import re2

        self._re2 = re2
        self._options = re2.Options()
        self._options.log_errors = False

    def compile(self, pattern: str, flags: int = 0) -> Any:
        import re

        prefix = "".join(c for f, c in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s")) if flags & f)
        return self._re2.compile(f"(?{prefix}){pattern}" if prefix else pattern, self._options)

    @property
    def error(self) -> type[Exception]:
        return self._re2.error

    def __deepcopy__(self, memo: dict) -> QuietRE2:
        return self  # stateless; pySigma deep-copies rules (filters), and a module cannot be copied


POLICY = SigmaPolicy(regex_engine=QuietRE2())


def pipeline() -> ProcessingPipeline:
    """Logsource -> Channel condition, and field aliases, for every rule before it is compiled."""
    items = [ProcessingItem(identifier=f"dcsentry-logsource-{svc}",
                            transformation=AddConditionTransformation({"Channel": list(channels)}),
                            rule_conditions=[LogsourceCondition(product="windows", service=svc)])
             for svc, channels in SERVICES.items()]
    items.append(ProcessingItem(identifier="dcsentry-fields", transformation=FieldMappingTransformation(FIELD_ALIASES)))
    return ProcessingPipeline(items=items, name="dcsentry windows event model", policy=POLICY)
