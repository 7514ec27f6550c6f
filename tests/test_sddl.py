"""The SDDL reader behind the 5136 security-descriptor rules: parsing, the old -> new ACE diff and
the words an alert uses (activities/dclog/sddl.py)."""

from __future__ import annotations

from dcsentry.activities.dclog import sddl

DOM = "S-1-5-21-4230534742-2542757381-3142984815"
GET_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"
OLD = (f"O:BAG:BAD:AI(D;;DC;;;WD)(OA;CI;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;bf967aba-0de6-11d0-a285-00aa003049e2;"
       f"{DOM}-1207)(OA;;CR;{GET_CHANGES};;{DOM}-498)(A;;RPRC;;;RU)S:AI(OU;CISA;WP;;;WD)")
NEW = OLD.replace("(A;;RPRC;;;RU)", f"(A;;RPRC;;;RU)(OA;;CR;{GET_CHANGES.upper()};;{DOM}-1151)"
                                     f"(OA;;CR;{{{GET_CHANGES_ALL}}};;{DOM}-1151)")


def test_parse_owner_group_flags_and_aces() -> None:
    sd = sddl.parse(OLD)
    assert (sd.owner, sd.group, sd.dacl_flags, sd.sacl_flags) == ("BA", "BA", "AI", "AI")
    assert [a.type for a in sd.dacl] == ["D", "OA", "OA", "A"]
    assert len(sd.sacl) == 1 and sd.sacl[0].flags == ("CI", "SA")
    ace = sd.dacl[1]
    assert ace.flags == ("CI",) and ace.rights == {"CR"} and ace.mask == 0x100
    assert ace.object_guid == "ab721a53-1e2f-11d0-9819-00aa0040529b"
    assert ace.inherited_object_guid == "bf967aba-0de6-11d0-a285-00aa003049e2"
    assert ace.trustee == f"{DOM}-1207" and ace.raw.startswith("(OA;CI;CR;")


def test_owner_may_be_a_sid_and_sections_may_be_missing() -> None:
    sd = sddl.parse(f"O:{DOM}-1234G:DAD:PAI(A;;GA;;;SY)")
    assert sd.owner == f"{DOM}-1234" and sd.group == "DA" and sd.dacl_flags == "PAI" and not sd.sacl
    only_dacl = sddl.parse("D:(A;;0x1f01ff;;;BA)")
    assert only_dacl.owner == "" and only_dacl.dacl[0].mask == 0x1F01FF


def test_hex_masks_decode_to_letters() -> None:
    mask, letters = sddl.mask_of("0x40100")
    assert mask == 0x40100 and letters == {"WD", "CR"}
    assert sddl.mask_of("CCDCLCSWRPWPDTLOCRSDRCWDWO")[0] == sddl.DS_FULL


def test_conditional_ace_keeps_its_expression_inside_the_ace() -> None:
    sd = sddl.parse('D:(XA;;FX;;;WD;(@User.Title=="PM" && (@User.Division=="Fin")))(A;;GA;;;SY)')
    assert [a.type for a in sd.dacl] == ["XA", "A"]


def test_malformed_or_empty_values_never_raise() -> None:
    for text in ("Malformed Security Descriptor", "", None, "O:", "D:(A;;GA", "D:(A;;;)"):
        sd = sddl.parse(text)
        assert isinstance(sd, sddl.SecurityDescriptor)
    assert not sddl.parse("Malformed Security Descriptor").valid


def test_added_aces_ignore_case_braces_and_order() -> None:
    added = sddl.added_aces(sddl.parse(OLD), sddl.parse(NEW))
    assert [a.object_guid for a in added] == [GET_CHANGES, GET_CHANGES_ALL]
    assert sddl.added_aces(sddl.parse(NEW), sddl.parse(NEW)) == []
    shuffled = "O:BAG:BAD:AI(A;;RPRC;;;RU)(D;;DC;;;WD)" + OLD.split("(D;;DC;;;WD)")[1].split("(A;;RPRC;;;RU)")[0]
    assert sddl.added_aces(sddl.parse(OLD), sddl.parse(shuffled)) == []
    assert [a.raw for a in sddl.removed_aces(sddl.parse(NEW), sddl.parse(OLD))] == [
        f"(OA;;CR;{GET_CHANGES.upper()};;{DOM}-1151)", f"(OA;;CR;{{{GET_CHANGES_ALL}}};;{DOM}-1151)"]


def test_replication_grants() -> None:
    added = sddl.added_aces(sddl.parse(OLD), sddl.parse(NEW))
    assert [sddl.grants_replication(a) for a in added] == ["DS-Replication-Get-Changes",
                                                            "DS-Replication-Get-Changes-All"]
    full = sddl.parse(f"D:(A;;GA;;;{DOM}-1151)(A;;CR;;;{DOM}-1152)(A;IO;GA;;;{DOM}-1153)"
                      f"(OD;;CR;{GET_CHANGES_ALL};;{DOM}-1154)(OA;;RP;{GET_CHANGES_ALL};;{DOM}-1155)").dacl
    assert [sddl.grants_replication(a) for a in full] == ["full control", "all extended rights", "", "", ""]


def test_words_name_rights_guids_and_trustees() -> None:
    added = sddl.added_aces(sddl.parse(OLD), sddl.parse(NEW))
    assert sddl.ace_words(added[1]) == f"Allow DS-Replication-Get-Changes-All to {DOM}-1151"
    ace = sddl.parse_ace(f"OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;{DOM}-512")
    assert sddl.ace_words(ace) == f"Allow User-Force-Change-Password to Domain Admins ({DOM}-512)"
    member = sddl.parse_ace(f"OA;;SW;bf9679c0-0de6-11d0-a285-00aa003049e2;;{DOM}-1151")
    assert "Self-Membership" in sddl.ace_words(member)
    write_member = sddl.parse_ace("OA;;WP;bf9679c0-0de6-11d0-a285-00aa003049e2;;AU")
    assert sddl.ace_words(write_member) == "Allow write member to Authenticated Users"
    kcl = sddl.parse_ace(f"OA;CI;RPWP;5b47d60f-6090-40b2-9f37-2a4de88f3063;;{DOM}-526")
    assert "msDS-KeyCredentialLink" in sddl.ace_words(kcl) and "Key Admins" in sddl.ace_words(kcl)
    inherited = sddl.parse_ace("OA;CIIO;RP;4c164200-20c0-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;RU")
    assert sddl.ace_words(inherited) == ("Allow read User-Account-Restrictions to Pre-Windows 2000 Compatible Access "
                                         "on descendant user objects")
    full = sddl.parse_ace(f"A;CI;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{DOM}-1234")
    assert sddl.ace_words(full).startswith("Allow full control (GenericAll) to")
    named = sddl.ace_words(full, names=lambda s: "mallory" if s.endswith("-1234") else None)
    assert f"mallory ({DOM}-1234)" in named
    assert sddl.ace_words(sddl.parse_ace("D;;DTSD;;;WD")) == "Deny delete subtree, delete to Everyone"


def test_deny_delete_everyone_is_the_accidental_deletion_ace() -> None:
    assert sddl.is_deny_delete_everyone(sddl.parse_ace("D;;DTSD;;;WD"))
    assert sddl.is_deny_delete_everyone(sddl.parse_ace("D;;DCDTSD;;;S-1-1-0"))
    assert not sddl.is_deny_delete_everyone(sddl.parse_ace("D;;DTSDWD;;;WD"))
    assert not sddl.is_deny_delete_everyone(sddl.parse_ace("A;;DTSD;;;WD"))


def test_aliases_as_sids() -> None:
    assert sddl.sid_of("ba") == "S-1-5-32-544"
    assert sddl.sid_of("DA", DOM) == f"{DOM}-512" and sddl.sid_of("DA") == "DA"
    assert sddl.trustee_words("ED") == "Enterprise Domain Controllers"
    assert sddl.trustee_words("DA") == "Domain Admins"
