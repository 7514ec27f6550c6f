"""Detectors of the DC's wider Security log (and the CA's), one file each
(reference/dc-log-alerts.md part B). Each takes the settings, the shared incidents, the baseline
and the `DomainContext` (inventory, logon sessions)."""

from __future__ import annotations

from ...activities.context import DomainContext
from ...config import Detection
from ..base import Detector, Incidents
from ..baseline import Baseline
from .adcs_config import AdcsConfigDetector
from .adcs_san import AdcsSanDetector
from .asrep_roasting import AsRepRoastingDetector
from .audit_policy import AuditPolicyDetector
from .dcshadow import DcShadowDetector
from .dcsync import DcSyncDetector
from .directory_changes import DirectoryChangeDetector
from .dpapi_backup_key import DpapiBackupKeyDetector
from .dsrm_password import DsrmPasswordDetector
from .golden_ticket import GoldenTicketDetector
from .kerberoasting import KerberoastingDetector
from .log_cleared import LogClearedDetector
from .nopac import NoPacDetector
from .overpass_the_hash import OverpassTheHashDetector
from .pass_the_hash import PassTheHashDetector
from .preauth_disabled import PreauthDisabledDetector
from .remote_service import RemoteServiceDetector
from .sid_history import SidHistoryDetector
from .trust import TrustDetector


def dc_log_detectors(cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> list[Detector]:
    return [
        KerberoastingDetector(cfg, incidents, baseline, ctx),
        AsRepRoastingDetector(cfg, incidents, baseline, ctx),
        GoldenTicketDetector(cfg, incidents, baseline, ctx),
        OverpassTheHashDetector(cfg, incidents, baseline, ctx),
        DcSyncDetector(cfg, incidents, baseline, ctx),
        DirectoryChangeDetector(cfg, incidents, baseline, ctx),
        DpapiBackupKeyDetector(cfg, incidents, baseline, ctx),
        PassTheHashDetector(cfg, incidents, baseline, ctx),
        RemoteServiceDetector(cfg, incidents, baseline, ctx),
        PreauthDisabledDetector(cfg, incidents, ctx),
        NoPacDetector(cfg, incidents, ctx),
        SidHistoryDetector(cfg, incidents, ctx),
        DcShadowDetector(cfg, incidents, ctx),
        DsrmPasswordDetector(cfg, incidents, ctx),
        LogClearedDetector(cfg, incidents, ctx),
        AuditPolicyDetector(cfg, incidents, ctx),
        TrustDetector(cfg, incidents),
        AdcsSanDetector(cfg, incidents, ctx),
        AdcsConfigDetector(cfg, incidents, ctx),
    ]
