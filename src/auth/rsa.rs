//! RSA public keys and PKCS#1 v1.5 signature verification (RFC 8017 section 8.2.2), the
//! `RS256`/`RS384`/`RS512` of JWT: a PEM or DER reader for the key, a Montgomery modular
//! exponentiation, and the comparison of the recovered block with the expected one.
//!
//! Written here rather than taken from a crate: verification is one public-exponent power and a
//! byte comparison, a few hundred lines with no secret involved (so no timing concerns), where
//! the `rsa` crate would bring a dozen crates of big-number and key-generation code. [`mod_pow`]
//! is public so the tests can sign with a test-only private exponent.

use super::sha;

/// Largest modulus accepted, in bits (keys of the API gateway are 2048).
pub const MAX_KEY_BITS: usize = 8192;
/// Smallest modulus accepted, in bits (Go refuses smaller keys too).
pub const MIN_KEY_BITS: usize = 1024;

/// The JWT hash of an `RSxxx` algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha::sha256(data).to_vec(),
            Hash::Sha384 => sha::sha384(data),
            Hash::Sha512 => sha::sha512(data),
        }
    }

    /// The DER `DigestInfo` header in front of the digest (RFC 8017 section 9.2, note 1).
    fn prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An RSA public key: modulus and exponent, big-endian without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl PublicKey {
    /// The modulus's length in bytes (the length of every signature).
    pub fn size(&self) -> usize {
        self.n.len()
    }

    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// Whether `sig` is a PKCS#1 v1.5 signature of `msg` with `hash` under this key.
    pub fn verify(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != self.size() || !less_than(sig, &self.n) {
            return false;
        }
        let recovered = mod_pow(sig, &self.e, &self.n);
        match encode_pkcs1(hash, &hash.digest(msg), self.size()) {
            Some(expected) => recovered == expected,
            None => false,
        }
    }
}

/// The block `00 01 FF…FF 00 DigestInfo` of `k` bytes that is signed, or `None` if `k` is too
/// small for it.
pub fn encode_pkcs1(hash: Hash, digest: &[u8], k: usize) -> Option<Vec<u8>> {
    let t_len = hash.prefix().len() + digest.len();
    if k < t_len + 11 {
        return None;
    }
    let mut em = vec![0xff; k];
    em[0] = 0;
    em[1] = 1;
    em[k - t_len - 1] = 0;
    em[k - t_len..k - digest.len()].copy_from_slice(hash.prefix());
    em[k - digest.len()..].copy_from_slice(digest);
    Some(em)
}

/// Reads an RSA public key: PEM (`PUBLIC KEY`, i.e. X.509 SubjectPublicKeyInfo, or
/// `RSA PUBLIC KEY`, PKCS#1), or the base64 of such a PEM as bk-cmdb's configuration holds it.
pub fn parse_public_key(text: &[u8]) -> Result<PublicKey, String> {
    let text = String::from_utf8_lossy(text);
    let pem = if text.contains("-----BEGIN") {
        text.into_owned()
    } else {
        let decoded =
            base64_decode(text.trim()).ok_or("neither a PEM block nor the base64 of one")?;
        String::from_utf8(decoded).map_err(|_| "the base64 text is not a PEM block")?
    };
    let (label, der) = pem_block(&pem)?;
    let key = match label.as_str() {
        "PUBLIC KEY" => spki(&der)?,
        "RSA PUBLIC KEY" => pkcs1(&der)?,
        other => return Err(format!("a PEM block of type {other:?}, not PUBLIC KEY")),
    };
    let bits = key.n.len() * 8 - key.n[0].leading_zeros() as usize;
    if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
        return Err(format!(
            "a {bits}-bit key (from {MIN_KEY_BITS} to {MAX_KEY_BITS} bits are accepted)"
        ));
    }
    if key.n[key.n.len() - 1] & 1 == 0 || key.e.len() > 8 || key.e == [1] {
        return Err("not a valid RSA public key".into());
    }
    Ok(key)
}

fn pem_block(pem: &str) -> Result<(String, Vec<u8>), String> {
    let start = pem.find("-----BEGIN ").ok_or("no PEM block")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----").ok_or("a broken PEM header")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body.find("-----END").ok_or("no PEM end line")?;
    let b64: String = body[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .collect::<String>()
        .split_whitespace()
        .collect();
    let der = base64_decode(&b64).ok_or("a PEM body that is not base64")?;
    Ok((label, der))
}

/// Standard base64 with or without padding.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// One DER element: (tag, content, rest).
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "malformed DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn integer(input: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    let (tag, content, rest) = der(input)?;
    if tag != 0x02 || content.is_empty() || content[0] & 0x80 != 0 {
        return Err("expected a positive INTEGER".into());
    }
    let start = content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len());
    if start == content.len() {
        return Err("a zero INTEGER".into());
    }
    Ok((content[start..].to_vec(), rest))
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn pkcs1(input: &[u8]) -> Result<PublicKey, String> {
    let (tag, seq, _) = der(input)?;
    if tag != 0x30 {
        return Err("expected an RSAPublicKey SEQUENCE".into());
    }
    let (n, rest) = integer(seq)?;
    let (e, _) = integer(rest)?;
    Ok(PublicKey { n, e })
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }` with rsaEncryption.
fn spki(input: &[u8]) -> Result<PublicKey, String> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (tag, seq, _) = der(input)?;
    if tag != 0x30 {
        return Err("expected a SubjectPublicKeyInfo SEQUENCE".into());
    }
    let (tag, alg, rest) = der(seq)?;
    if tag != 0x30 {
        return Err("expected an AlgorithmIdentifier".into());
    }
    let (tag, oid, _) = der(alg)?;
    if tag != 0x06 || oid != RSA_ENCRYPTION {
        return Err("not an RSA key".into());
    }
    let (tag, bits, _) = der(rest)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return Err("expected the key's BIT STRING".into());
    }
    pkcs1(&bits[1..])
}

/// `a < b` for big-endian numbers of the same length.
fn less_than(a: &[u8], b: &[u8]) -> bool {
    a < b
}

fn to_limbs(be: &[u8], k: usize) -> Vec<u64> {
    let mut limbs = vec![0u64; k];
    for (i, &byte) in be.iter().rev().enumerate() {
        limbs[i / 8] |= (byte as u64) << (8 * (i % 8));
    }
    limbs
}

fn from_limbs(limbs: &[u64], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for i in 0..len {
        out[len - 1 - i] = (limbs[i / 8] >> (8 * (i % 8))) as u8;
    }
    out
}

fn geq(a: &[u64], b: &[u64]) -> bool {
    for i in (0..a.len()).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn sub_in_place(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for i in 0..a.len() {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        a[i] = d;
        borrow = (b1 || b2) as u64;
    }
}

/// Montgomery product `a·b·R⁻¹ mod n` (CIOS), for `a, b < n`.
fn mont_mul(a: &[u64], b: &[u64], n: &[u64], n0inv: u64) -> Vec<u64> {
    let k = n.len();
    let mut t = vec![0u64; k + 2];
    for &bi in b.iter().take(k) {
        let mut c: u128 = 0;
        for j in 0..k {
            let s = t[j] as u128 + (a[j] as u128) * (bi as u128) + c;
            t[j] = s as u64;
            c = s >> 64;
        }
        let s = t[k] as u128 + c;
        t[k] = s as u64;
        t[k + 1] = (s >> 64) as u64;
        let m = t[0].wrapping_mul(n0inv);
        let s = t[0] as u128 + (m as u128) * (n[0] as u128);
        let mut c = s >> 64;
        for j in 1..k {
            let s = t[j] as u128 + (m as u128) * (n[j] as u128) + c;
            t[j - 1] = s as u64;
            c = s >> 64;
        }
        let s = t[k] as u128 + c;
        t[k - 1] = s as u64;
        t[k] = t[k + 1] + (s >> 64) as u64;
        t[k + 1] = 0;
    }
    let mut r = t[..k].to_vec();
    if t[k] != 0 || geq(&r, n) {
        sub_in_place(&mut r, n);
    }
    r
}

/// `base^exp mod modulus` for an odd modulus and `base < modulus`; big-endian, the result as
/// long as the modulus.
pub fn mod_pow(base: &[u8], exp: &[u8], modulus: &[u8]) -> Vec<u8> {
    let k = modulus.len().div_ceil(8).max(1);
    let n = to_limbs(modulus, k);
    // -n⁻¹ mod 2⁶⁴ by Newton's iteration (n is odd).
    let mut inv: u64 = 1;
    for _ in 0..7 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
    }
    let n0inv = inv.wrapping_neg();
    // R² mod n, by doubling 1 (2·64·k) times.
    let mut r2 = vec![0u64; k];
    r2[0] = 1;
    for _ in 0..(128 * k) {
        let mut carry = 0u64;
        for limb in r2.iter_mut() {
            let next = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 || geq(&r2, &n) {
            sub_in_place(&mut r2, &n);
        }
    }
    let mut one = vec![0u64; k];
    one[0] = 1;
    let x = mont_mul(&to_limbs(base, k), &r2, &n, n0inv);
    let mut acc = mont_mul(&one, &r2, &n, n0inv);
    for byte in exp {
        for bit in (0..8).rev() {
            acc = mont_mul(&acc, &acc, &n, n0inv);
            if (byte >> bit) & 1 == 1 {
                acc = mont_mul(&acc, &x, &n, n0inv);
            }
        }
    }
    from_limbs(&mont_mul(&acc, &one, &n, n0inv), modulus.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_powers() {
        // 4^13 mod 497 = 445; 7^560 mod 561 = 1 (a Carmichael number).
        assert_eq!(mod_pow(&[4], &[13], &[0x01, 0xf1]), vec![0x01, 0xbd]);
        assert_eq!(mod_pow(&[7], &[0x02, 0x30], &[0x02, 0x31]), vec![0, 1]);
        // A modulus of two limbs: (x^5)^7 = (x^7)^5 = x^35.
        let m = [0x03u8, 0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x89];
        let x = [0x01u8, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23];
        let a = mod_pow(&x, &[5], &m);
        let b = mod_pow(&x, &[7], &m);
        let direct = mod_pow(&x, &[35], &m);
        assert_eq!(mod_pow(&a, &[7], &m), direct);
        assert_eq!(mod_pow(&b, &[5], &m), direct);
    }

    #[test]
    fn pkcs1_block() {
        let em = encode_pkcs1(Hash::Sha256, &[0xaa; 32], 64).unwrap();
        assert_eq!(&em[..3], &[0, 1, 0xff]);
        assert_eq!(em[64 - 32 - 19 - 1], 0);
        assert_eq!(&em[64 - 32..], &[0xaa; 32]);
        assert!(encode_pkcs1(Hash::Sha512, &[0; 64], 64).is_none());
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        assert!(parse_public_key(b"hello").is_err());
        assert!(
            parse_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!(
            parse_public_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(der(&[0x30, 0x05, 1]).is_err());
    }
}
