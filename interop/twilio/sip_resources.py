#!/usr/bin/env python3
"""Manages SIP resources on a running mediaseal server with the official Twilio Python helper
library, unchanged (issue 11): SIP Domains, credential lists and credentials, IP access control
lists and addresses, and the domain's Auth/Calls mappings.

Usage: sip_resources.py BASE_URL ACCOUNT_SID AUTH_TOKEN DOMAIN_NAME

Exits non-zero on the first failure. Leaves the domain in place, with one credential list and one
IP access control list mapped.
"""
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, AC, TOKEN, NAME = sys.argv[1:5]
PASSWORD = "Helper-Passw0rd-7"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


c = Client(AC, TOKEN)
c.api.base_url = BASE
sip = c.api.v2010.accounts(AC).sip

d = sip.domains.create(domain_name=NAME, friendly_name="helper", voice_url="https://app.example.com/voice",
                       secure=True)
check(d.sid.startswith("SD") and d.domain_name == NAME, "domain created")
check(d.secure is True and d.voice_method == "POST", "secure set, methods default to POST")
check(d.date_created is not None, "date_created parsed (RFC 2822)")
d = sip.domains(d.sid).update(secure=False, voice_fallback_url="https://app.example.com/fallback")
check(d.secure is False and d.voice_fallback_url.endswith("/fallback"), "domain updated")
check(any(x.sid == d.sid for x in sip.domains.list()), "domain listed")
try:
    sip.domains.create(domain_name="outside.example.org")
    check(False, "a name outside the suffix is refused")
except TwilioRestException as e:
    check(e.status == 400, "a name outside the suffix is refused (400)")

cl = sip.credential_lists.create(friendly_name="staff")
check(cl.sid.startswith("CL"), "credential list created")
cred = sip.credential_lists(cl.sid).credentials.create(username="erin", password=PASSWORD)
check(cred.sid.startswith("CR") and cred.username == "erin", "credential created")
check(not hasattr(cred, "password") or getattr(cred, "password", None) is None, "no password returned")
cred = sip.credential_lists(cl.sid).credentials(cred.sid).update(password="Another-Passw0rd-8")
check(cred.username == "erin", "password changed")
check([x.username for x in sip.credential_lists(cl.sid).credentials.list()] == ["erin"], "credentials listed")
try:
    sip.credential_lists(cl.sid).credentials.create(username="weak", password="weak")
    check(False, "a weak password is refused")
except TwilioRestException as e:
    check(e.status == 400 and "weak" not in (e.msg or ""), "a weak password is refused without echo")

acl = sip.ip_access_control_lists.create(friendly_name="office")
check(acl.sid.startswith("AL"), "IP ACL created")
ip = sip.ip_access_control_lists(acl.sid).ip_addresses.create(friendly_name="lan", ip_address="192.0.2.0",
                                                             cidr_prefix_length=24)
check(ip.sid.startswith("IP") and ip.cidr_prefix_length == 24, "IP address created")
check(len(sip.ip_access_control_lists(acl.sid).ip_addresses.list()) == 1, "IP addresses listed")

calls = sip.domains(d.sid).auth.calls
m = calls.credential_list_mappings.create(credential_list_sid=cl.sid)
check(m.sid == cl.sid and m.friendly_name == "staff", "credential list mapped to Auth/Calls")
m = calls.ip_access_control_list_mappings.create(ip_access_control_list_sid=acl.sid)
check(m.sid == acl.sid, "IP ACL mapped to Auth/Calls")
check([x.sid for x in calls.credential_list_mappings.list()] == [cl.sid], "credential list mappings listed")
check(calls.ip_access_control_list_mappings(acl.sid).fetch().friendly_name == "office", "mapping fetched")
d = sip.domains(d.sid).fetch()
check(d.auth_type == "IP_ACL,CREDENTIAL_LIST", "auth_type follows the mappings")

# SIP registration: the domain's switch and the lists mapped to Auth/Registrations.
d = sip.domains(d.sid).update(sip_registration=True)
check(d.sip_registration is True, "SipRegistration turned on")
regs = sip.domains(d.sid).auth.registrations
m = regs.credential_list_mappings.create(credential_list_sid=cl.sid)
check(m.sid == cl.sid and m.friendly_name == "staff", "credential list mapped to Auth/Registrations")
check([x.sid for x in regs.credential_list_mappings.list()] == [cl.sid], "registration mappings listed")
check(regs.credential_list_mappings(cl.sid).fetch().friendly_name == "staff", "registration mapping fetched")
check(regs.credential_list_mappings(cl.sid).delete() is True, "registration mapping deleted")
check(regs.credential_list_mappings.list() == [], "no registration mapping left")
check(sip.domains(d.sid).fetch().sip_registration is True, "SipRegistration stays on")

# A throwaway list, mapped then removed.
tmp = sip.credential_lists.create(friendly_name="tmp")
tmp_cred = sip.credential_lists(tmp.sid).credentials.create(username="tmp", password=PASSWORD)
check(sip.credential_lists(tmp.sid).credentials(tmp_cred.sid).delete() is True, "credential deleted")
check(sip.credential_lists(tmp.sid).delete() is True, "credential list deleted")
try:
    sip.credential_lists(tmp.sid).fetch()
    check(False, "a deleted list is gone")
except TwilioRestException as e:
    check(e.status == 404, "a deleted list is gone (404)")
print("all ok")
