//! Session keys (RFC 3711 §4.3 key derivation) and the per-packet transforms.
//!
//! Everything here works on already-validated slices; the packet layout rules live in
//! `session.rs`. Nothing allocates per packet.

use core::fmt;

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use mediaseal_lc::ctr::AesCtr;
use mediaseal_lc::hmac_sha1::HmacSha1Key;
use zeroize::Zeroize;

use crate::{MasterKey, SrtpProfile};

/// Key derivation labels (RFC 3711 §4.3.1 and §4.3.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// The RFC 3711 AES-CM PRF with key derivation rate 0: `out` = AES-CM keystream under the master
/// key with IV = (master_salt ⊕ (label ≪ 48)) ‖ 0x0000.
///
/// GCM's 96-bit master salt is right-padded with zeros to 112 bits (RFC 7714 §11, as libsrtp).
pub(crate) fn derive(prf: &AesCtr, master: &MasterKey, label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let salt = master.salt();
    // Salts are 12 or 14 bytes (MasterKey guarantees it), so this never truncates.
    for (d, s) in iv.iter_mut().zip(salt.iter()).take(14) {
        *d = *s;
    }
    iv[7] ^= label as u8;
    prf.keystream(&iv, out);
    iv.zeroize();
}

/// Which transform a session uses.
#[allow(
    clippy::large_enum_variant,
    reason = "one per session and direction; inline keeps the per-packet path free of a pointer hop"
)]
enum Transform {
    /// AES counter mode + HMAC-SHA1.
    CmSha1 { ctr: AesCtr, mac: HmacSha1Key },
    /// AES-GCM (RFC 7714).
    Gcm { key: LessSafeKey },
}

/// Session keys for RTP or for RTCP in one direction.
pub(crate) struct Cipher {
    transform: Transform,
    /// The session salt, left-aligned; 14 bytes used for CM, 12 for GCM.
    salt: [u8; 14],
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").finish_non_exhaustive()
    }
}

impl Drop for Cipher {
    fn drop(&mut self) {
        // AesCtr, HmacSha1Key and LessSafeKey cleanse their own schedules.
        self.salt.zeroize();
    }
}

/// AWS-LC reported a failure in an operation that cannot fail on valid inputs.
#[derive(Debug)]
pub(crate) struct CryptoFailure;

/// The 16-byte counter block / 12-byte nonce shared by all profiles: bytes 4..8 carry the SSRC
/// and bytes 8..14 the 48-bit index (ROC ‖ SEQ for SRTP, the 31-bit index for SRTCP), XORed with
/// the session salt. GCM uses the first 12 bytes (RFC 7714 §8.1, §9.1), since its salt is 12
/// bytes and the 48-bit index then sits in bytes 6..12 of the nonce.
#[inline]
fn iv(salt: &[u8; 14], ssrc: u32, index: u64, gcm: bool) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    let off = if gcm { 2 } else { 4 };
    let s = ssrc.to_be_bytes();
    let i = index.to_be_bytes();
    for k in 0..4 {
        iv[off + k] ^= s[k];
    }
    for k in 0..6 {
        iv[off + 4 + k] ^= i[2 + k];
    }
    iv
}

impl Cipher {
    /// Derives the RTP (`rtcp == false`) or RTCP session keys from `master`.
    pub(crate) fn new(master: &MasterKey, rtcp: bool) -> Result<Self, CryptoFailure> {
        let profile = master.profile();
        let prf = AesCtr::new(master.key()).map_err(|_| CryptoFailure)?;
        let (enc_label, auth_label, salt_label) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        let key_len = profile.master_key_len();
        let mut enc = [0u8; 32];
        let enc = &mut enc[..key_len];
        derive(&prf, master, enc_label, enc);
        let mut salt = [0u8; 14];
        derive(
            &prf,
            master,
            salt_label,
            &mut salt[..profile.master_salt_len()],
        );
        let transform = if profile.is_aead() {
            let alg = if key_len == 16 {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            let key = UnboundKey::new(alg, enc).map_err(|_| CryptoFailure);
            enc.zeroize();
            Transform::Gcm {
                key: LessSafeKey::new(key?),
            }
        } else {
            let ctr = AesCtr::new(enc).map_err(|_| CryptoFailure);
            enc.zeroize();
            let mut auth = [0u8; 20];
            derive(&prf, master, auth_label, &mut auth);
            let mac = HmacSha1Key::new(&auth);
            auth.zeroize();
            Transform::CmSha1 { ctr: ctr?, mac }
        };
        Ok(Self { transform, salt })
    }

    /// For tests and the vector files: builds a cipher from session keys directly.
    pub(crate) fn from_session_keys(
        profile: SrtpProfile,
        enc: &[u8],
        auth: &[u8],
        salt: &[u8],
    ) -> Result<Self, CryptoFailure> {
        let mut s = [0u8; 14];
        s.get_mut(..salt.len())
            .ok_or(CryptoFailure)?
            .copy_from_slice(salt);
        let transform = if profile.is_aead() {
            let alg = if enc.len() == 16 {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            let key = UnboundKey::new(alg, enc).map_err(|_| CryptoFailure)?;
            Transform::Gcm {
                key: LessSafeKey::new(key),
            }
        } else {
            let ctr = AesCtr::new(enc).map_err(|_| CryptoFailure)?;
            Transform::CmSha1 {
                ctr,
                mac: HmacSha1Key::new(auth),
            }
        };
        Ok(Self { transform, salt: s })
    }

    /// Encrypts and tags an RTP packet. `body` is header ‖ payload, `hdr_len` the header length,
    /// `tag_out` receives the tag (its length is the profile's RTP tag length).
    #[inline]
    pub(crate) fn protect_rtp(
        &self,
        body: &mut [u8],
        hdr_len: usize,
        tag_out: &mut [u8],
        ssrc: u32,
        index: u64,
    ) -> Result<(), CryptoFailure> {
        match &self.transform {
            Transform::CmSha1 { ctr, mac } => {
                let payload = body.get_mut(hdr_len..).ok_or(CryptoFailure)?;
                ctr.apply_keystream(&iv(&self.salt, ssrc, index, false), payload);
                // RFC 3711 §4.2: the tag covers the authenticated portion followed by the ROC.
                // One contiguous slice: splitting it makes SHA1_Update re-buffer every block.
                let roc = ((index >> 16) as u32).to_be_bytes();
                let t = mac.sign(&[body, &roc]);
                let n = tag_out.len();
                tag_out.copy_from_slice(t.get(..n).ok_or(CryptoFailure)?);
            }
            Transform::Gcm { key } => {
                let (header, payload) = body.split_at_mut_checked(hdr_len).ok_or(CryptoFailure)?;
                let tag = key
                    .seal_in_place_separate_tag(
                        nonce(&self.salt, ssrc, index),
                        Aad::from(&*header),
                        payload,
                    )
                    .map_err(|_| CryptoFailure)?;
                if tag_out.len() != tag.as_ref().len() {
                    return Err(CryptoFailure);
                }
                tag_out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Authenticates and decrypts an SRTP packet in place. `pkt` is header ‖ payload ‖ tag with a
    /// `tag_len`-byte tag. Returns `false` if authentication fails (then `pkt` is unchanged for
    /// counter mode, and unspecified for GCM).
    #[inline]
    pub(crate) fn unprotect_rtp(
        &self,
        pkt: &mut [u8],
        hdr_len: usize,
        tag_len: usize,
        ssrc: u32,
        index: u64,
    ) -> bool {
        let Some(body_len) = pkt.len().checked_sub(tag_len) else {
            return false;
        };
        match &self.transform {
            Transform::CmSha1 { ctr, mac } => {
                let Some((body, tag)) = pkt.split_at_mut_checked(body_len) else {
                    return false;
                };
                let roc = ((index >> 16) as u32).to_be_bytes();
                if !mac.verify_truncated(&[body, &roc], tag) {
                    return false;
                }
                let Some(payload) = body.get_mut(hdr_len..) else {
                    return false;
                };
                ctr.apply_keystream(&iv(&self.salt, ssrc, index, false), payload);
                true
            }
            Transform::Gcm { key } => {
                let Some((header, rest)) = pkt.split_at_mut_checked(hdr_len) else {
                    return false;
                };
                key.open_in_place(nonce(&self.salt, ssrc, index), Aad::from(&*header), rest)
                    .is_ok()
            }
        }
    }

    /// Counter-mode SRTCP: encrypts `pkt[8..]` (everything after the SSRC).
    #[inline]
    pub(crate) fn cm_crypt_rtcp(&self, body: &mut [u8], ssrc: u32, index: u32) {
        if let (Transform::CmSha1 { ctr, .. }, Some(enc)) = (&self.transform, body.get_mut(8..)) {
            ctr.apply_keystream(&iv(&self.salt, ssrc, u64::from(index), false), enc);
        }
    }

    /// Counter-mode SRTCP: the full 20-byte HMAC over `parts`.
    #[inline]
    pub(crate) fn cm_mac(&self, parts: &[&[u8]]) -> Option<[u8; 20]> {
        match &self.transform {
            Transform::CmSha1 { mac, .. } => Some(mac.sign(parts)),
            Transform::Gcm { .. } => None,
        }
    }

    /// Counter-mode SRTCP: whether `tag` is a valid truncated HMAC over `parts`.
    #[inline]
    pub(crate) fn cm_verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        match &self.transform {
            Transform::CmSha1 { mac, .. } => mac.verify_truncated(parts, tag),
            Transform::Gcm { .. } => false,
        }
    }

    /// GCM SRTCP seal: encrypts `plaintext` in place and returns the tag. `aad` is the 8-byte
    /// header followed by the E-flag/index word (RFC 7714 §9.2).
    #[inline]
    pub(crate) fn gcm_seal(
        &self,
        aad: &[u8; 12],
        plaintext: &mut [u8],
        ssrc: u32,
        index: u32,
    ) -> Result<[u8; 16], CryptoFailure> {
        let Transform::Gcm { key } = &self.transform else {
            return Err(CryptoFailure);
        };
        let tag = key
            .seal_in_place_separate_tag(
                nonce(&self.salt, ssrc, u64::from(index)),
                Aad::from(aad),
                plaintext,
            )
            .map_err(|_| CryptoFailure)?;
        let mut out = [0u8; 16];
        if tag.as_ref().len() != 16 {
            return Err(CryptoFailure);
        }
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// GCM SRTCP open: `ct_and_tag` is ciphertext ‖ 16-byte tag. Returns whether it verified.
    #[inline]
    pub(crate) fn gcm_open(
        &self,
        aad: &[u8; 12],
        ct_and_tag: &mut [u8],
        ssrc: u32,
        index: u32,
    ) -> bool {
        let Transform::Gcm { key } = &self.transform else {
            return false;
        };
        key.open_in_place(
            nonce(&self.salt, ssrc, u64::from(index)),
            Aad::from(aad),
            ct_and_tag,
        )
        .is_ok()
    }

    /// Whether this is a GCM cipher.
    pub(crate) fn is_gcm(&self) -> bool {
        matches!(self.transform, Transform::Gcm { .. })
    }
}

#[inline]
fn nonce(salt: &[u8; 14], ssrc: u32, index: u64) -> Nonce {
    let full = iv(salt, ssrc, index, true);
    let mut n = [0u8; 12];
    n.copy_from_slice(&full[..12]);
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let master = MasterKey::new(
            SrtpProfile::AesCm128HmacSha1_80,
            &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        let prf = AesCtr::new(master.key()).unwrap();
        let mut ke = [0u8; 16];
        derive(&prf, &master, Label::RtpEncryption, &mut ke);
        assert_eq!(ke.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut ka = [0u8; 20];
        derive(&prf, &master, Label::RtpAuth, &mut ka);
        assert_eq!(ka.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
        let mut ks = [0u8; 14];
        derive(&prf, &master, Label::RtpSalt, &mut ks);
        assert_eq!(ks.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    #[test]
    fn iv_layout() {
        let salt = [0u8; 14];
        let v = iv(&salt, 0x0102_0304, 0x0000_a1a2_a3a4_a5a6, false);
        assert_eq!(
            v,
            [
                0, 0, 0, 0, 1, 2, 3, 4, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0, 0
            ]
        );
        let v = iv(&salt, 0x0102_0304, 0x0000_a1a2_a3a4_a5a6, true);
        assert_eq!(
            &v[..12],
            &[0, 0, 1, 2, 3, 4, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6]
        );
    }
}
