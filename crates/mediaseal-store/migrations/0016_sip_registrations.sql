-- SIP registration (Twilio's `SipRegistration` of a domain): the domain's switch, and credential
-- lists mapped to its `Auth/Registrations` live in `sip_domain_mappings` with kind
-- 'registration' (the mapping table already keys on kind, so one list may serve both calls and
-- registrations). The bindings themselves (AOR → Contact) are kept in the memory of the SIP
-- edge that accepted the REGISTER: they expire within the hour and phones refresh them.

ALTER TABLE sip_domains ADD COLUMN sip_registration BIGINT NOT NULL DEFAULT 0;
