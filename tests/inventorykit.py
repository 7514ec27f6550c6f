"""Hand-written directory exports shaped like what `ldifde -f`, `ldapsearch` and Windows PowerShell's
`Get-ADUser / Get-ADComputer / Get-ADDomainController | Export-Csv` write (no real domain's data:
the names, SIDs and GUIDs are made up; every test using them is named `synthetic`)."""

from __future__ import annotations

import base64
import struct

DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
BASE = "DC=contoso,DC=local"


def sid_bytes(sid: str) -> bytes:
    parts = [int(x) for x in sid.split("-")[2:]]
    authority, subs = parts[0], parts[1:]
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode()


def fold(line: str, width: int = 78) -> str:
    """LDIF line folding as ldifde does it: the rest continues on lines starting with one space."""
    out, rest = [line[:width]], line[width:]
    while rest:
        out.append(" " + rest[:width - 1])
        rest = rest[width - 1:]
    return "\n".join(out)


def _guid_b64(n: int) -> str:
    return b64(bytes(range(n, n + 16)))


# ldifde -f contoso.ldf -d "DC=contoso,DC=local" -r "(|(objectClass=user)(objectClass=computer))"
# -l "objectClass,sAMAccountName,objectSid,userAccountControl,adminCount,servicePrincipalName,..."
LDIFDE = "\n".join([
    "",
    "dn: CN=Administrator,CN=Users," + BASE,
    "changetype: add",
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "distinguishedName: CN=Administrator,CN=Users," + BASE,
    "objectGUID:: " + _guid_b64(1),
    "userAccountControl: 66048",
    "adminCount: 1",
    "primaryGroupID: 513",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-500")),
    "sAMAccountName: Administrator",
    "",
    "dn: CN=SQL Service,OU=Service Accounts," + BASE,
    "changetype: add",
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "distinguishedName: CN=SQL Service,OU=Service Accounts," + BASE,
    "userAccountControl: 66048",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1107")),
    "sAMAccountName: svc-sql",
    "userPrincipalName: svc-sql@contoso.local",
    fold("servicePrincipalName: MSSQLSvc/sql01.contoso.local:1433-a-very-long-instance-name-that-ldifde-folds-"
         "over-two-lines"),
    "servicePrincipalName: MSSQLSvc/sql01.contoso.local",
    "msDS-SupportedEncryptionTypes: 24",
    "",
    # a non-ASCII name: ldifde writes it base64 (dn:: too)
    "dn:: " + b64("CN=Jürgen Weiß,OU=Staff," + BASE),
    "changetype: add",
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "distinguishedName:: " + b64("CN=Jürgen Weiß,OU=Staff," + BASE),
    "userAccountControl: 514",  # NORMAL_ACCOUNT | ACCOUNTDISABLE
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1201")),
    "sAMAccountName: jweiss",
    "",
    "dn: CN=DC01,OU=Domain Controllers," + BASE,
    "changetype: add",
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "objectClass: computer",
    "distinguishedName: CN=DC01,OU=Domain Controllers," + BASE,
    "userAccountControl: 532480",  # SERVER_TRUST | TRUSTED_FOR_DELEGATION
    "primaryGroupID: 516",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1000")),
    "sAMAccountName: DC01$",
    "dNSHostName: dc01.contoso.local",
    "servicePrincipalName: ldap/dc01.contoso.local",
    "servicePrincipalName: GC/dc01.contoso.local/contoso.local",
    "",
    "dn: CN=RODC01,OU=Domain Controllers," + BASE,
    "changetype: add",
    "objectClass: top", "objectClass: computer",
    "userAccountControl: 83890176",  # PARTIAL_SECRETS | TRUSTED_TO_AUTH_FOR_DELEGATION | WORKSTATION_TRUST
    "primaryGroupID: 521",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1105")),
    "sAMAccountName: RODC01$",
    "dNSHostName: rodc01.contoso.local",
    "",
    "dn: CN=WS0042,OU=Workstations," + BASE,
    "changetype: add",
    "objectClass: top", "objectClass: computer",
    "userAccountControl: 4096",
    "primaryGroupID: 515",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1301")),
    "sAMAccountName: WS0042$",
    "dNSHostName: ws0042.contoso.local",
    "",
    "dn: CN=Domain Admins,CN=Users," + BASE,  # a group: not an account
    "changetype: add",
    "objectClass: top", "objectClass: group",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-512")),
    "sAMAccountName: Domain Admins",
    "adminCount: 1",
    "",
])

# ldapsearch -LLL is plain; without -LLL it adds comments, a referral and the result trailer
LDAPSEARCH = "\n".join([
    "# extended LDIF", "#", "# LDAPv3", f"# base <{BASE}> with scope subtree",
    "# filter: (sAMAccountType=805306368)", "# requesting: ALL", "#", "",
    "# krbtgt, Users, contoso.local",
    "dn: CN=krbtgt,CN=Users," + BASE,
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "userAccountControl: 514",
    "adminCount: 1",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-502")),
    "sAMAccountName: krbtgt",
    "servicePrincipalName: kadmin/changepw",
    "",
    "# MSOL_0a1b2c3d4e5f, Users, contoso.local",
    "dn: CN=MSOL_0a1b2c3d4e5f,CN=Users," + BASE,
    "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
    "userAccountControl: 66048",
    "objectSid:: " + b64(sid_bytes(DOMAIN_SID + "-1600")),
    "sAMAccountName: MSOL_0a1b2c3d4e5f",
    "",
    "# search reference",
    "ref: ldap://ForestDnsZones.contoso.local/DC=ForestDnsZones," + BASE,
    "",
    "# search result", "search: 2", "result: 0 Success", "",
    "# numResponses: 4", "# numEntries: 2", "# numReferences: 1", "",
])

_AD_TAIL = ('"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",'
            '"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",'
            '"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",'
            '"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"')

# Get-ADUser -Filter * -Properties adminCount,servicePrincipalName,msDS-SupportedEncryptionTypes |
#   Export-Csv users.csv        (Windows PowerShell 5.1: a #TYPE line, every value quoted)
GET_ADUSER_CSV = "\r\n".join([
    "#TYPE Microsoft.ActiveDirectory.Management.ADUser",
    '"adminCount","DistinguishedName","Enabled","GivenName","msDS-SupportedEncryptionTypes","Name","ObjectClass",'
    '"ObjectGUID","SamAccountName","servicePrincipalName","SID","Surname","UserPrincipalName","PropertyNames",'
    '"AddedProperties","RemovedProperties","ModifiedProperties","PropertyCount"',
    f'"1","CN=Administrator,CN=Users,{BASE}","True",,,"Administrator","user",'
    f'"0d5b3a7e-1111-4c2b-9a55-000000000500","Administrator",'
    f'"Microsoft.ActiveDirectory.Management.ADPropertyValueCollection","{DOMAIN_SID}-500",,,{_AD_TAIL},"13"',
    f',"CN=Alice Jones,OU=Staff,{BASE}","True","Alice",,"Alice Jones","user","0d5b3a7e-1111-4c2b-9a55-000000001104",'
    f'"ajones","Microsoft.ActiveDirectory.Management.ADPropertyValueCollection","{DOMAIN_SID}-1104","Jones",'
    f'"ajones@contoso.local",{_AD_TAIL},"13"',
    f',"CN=Old Temp,OU=Staff,{BASE}","False",,,"Old Temp","user","0d5b3a7e-1111-4c2b-9a55-000000001150",'
    f'"oldtemp","Microsoft.ActiveDirectory.Management.ADPropertyValueCollection","{DOMAIN_SID}-1150",,,'
    f'{_AD_TAIL},"13"',
    # an admin who joined the SPNs (Select-Object @{n='servicePrincipalName';e={$_.servicePrincipalName -join ';'}})
    f',"CN=Backup Service,OU=Service Accounts,{BASE}","True",,"28","Backup Service","user",'
    f'"0d5b3a7e-1111-4c2b-9a55-000000001170","svc-backup","BKP/bkp01.contoso.local;BKP/bkp01","{DOMAIN_SID}-1170",,'
    f'"svc-backup@contoso.local",{_AD_TAIL},"13"',
    "",
])

# Get-ADComputer -Filter * -Properties userAccountControl,PrimaryGroupID | Export-Csv computers.csv -UseCulture
# (PowerShell 7 on a German system: no #TYPE line, `;` between fields)
GET_ADCOMPUTER_CSV = "\n".join([
    '"DistinguishedName";"DNSHostName";"Enabled";"Name";"ObjectClass";"ObjectGUID";"PrimaryGroupID";'
    '"SamAccountName";"SID";"UserAccountControl";"UserPrincipalName"',
    f'"CN=DC01,OU=Domain Controllers,{BASE}";"dc01.contoso.local";"True";"DC01";"computer";'
    f'"4c6d1e2f-2222-4a1b-8c3d-000000001000";"516";"DC01$";"{DOMAIN_SID}-1000";"532480";',
    f'"CN=DC02,OU=Domain Controllers,{BASE}";"dc02.contoso.local";"True";"DC02";"computer";'
    f'"4c6d1e2f-2222-4a1b-8c3d-000000001001";"516";"DC02$";"{DOMAIN_SID}-1001";"532480";',
    f'"CN=FS01,OU=Servers,{BASE}";"fs01.contoso.local";"True";"FS01";"computer";'
    f'"4c6d1e2f-2222-4a1b-8c3d-000000001200";"515";"FS01$";"{DOMAIN_SID}-1200";"4096";',
    "",
])

# Get-ADDomainController -Filter * | Export-Csv dcs.csv -NoTypeInformation
GET_ADDC_CSV = "\n".join([
    '"ComputerObjectDN","DefaultPartition","Domain","Enabled","Forest","HostName","IPv4Address","IsGlobalCatalog",'
    '"IsReadOnly","LdapPort","Name","OperatingSystem","Site","SslPort"',
    f'"CN=DC03,OU=Domain Controllers,{BASE}","{BASE}","contoso.local","True","contoso.local","dc03.contoso.local",'
    '"10.0.0.12","True","False","389","DC03","Windows Server 2022 Datacenter","HQ","636"',
    "",
])
