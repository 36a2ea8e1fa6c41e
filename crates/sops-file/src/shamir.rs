//! Shamir secret sharing over GF(2^8), as sops uses it for several key groups
//! (HashiCorp Vault's scheme: AES polynomial 0x11B). A share is the 32 y-bytes
//! followed by its x-coordinate; sops gives group `i` the x-coordinate `i + 1`.
//!
//! x-coordinates are single bytes and x = 0 is the secret itself, so there are at
//! most [`MAX_SHARES`] shares (sops' `Split` refuses more too): a 256th group would
//! wrap around to x = 0 and carry the data key in the clear. Callers refuse more
//! key groups with a message; [`split`] refuses them as well.

use rand::RngCore;
use zeroize::Zeroizing;

fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1B;
        }
        b >>= 1;
    }
    p
}

fn inverse(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e != 0 {
        if e & 1 != 0 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// The most shares (so key groups) there can be: one per non-zero x-coordinate.
pub(crate) const MAX_SHARES: usize = 255;

/// Split `secret` into `parts` shares, any `threshold` of which recover it;
/// `None` unless `2 <= threshold <= parts <= MAX_SHARES`.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Option<Vec<Zeroizing<Vec<u8>>>> {
    if parts > MAX_SHARES || threshold > parts || threshold < 2 {
        return None;
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len() + 1)))
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold.saturating_sub(1)]);
    for &byte in secret {
        rand::rngs::OsRng.fill_bytes(&mut coefficients);
        for (x, share) in (1..=u8::MAX).zip(shares.iter_mut()) {
            // Horner: byte + c1 x + c2 x^2 + ...
            let mut y = 0u8;
            for &c in coefficients.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share.push(mul(y, x) ^ byte);
        }
    }
    for (x, share) in (1..=u8::MAX).zip(shares.iter_mut()) {
        share.push(x);
    }
    Some(shares)
}

/// Recover the secret from shares (Lagrange interpolation at x = 0).
pub(crate) fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Option<Zeroizing<Vec<u8>>> {
    let len = shares.first()?.len();
    if shares.len() < 2 || len < 2 || shares.iter().any(|s| s.len() != len) {
        return None;
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return None;
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (i, share) in shares.iter().enumerate() {
        // Basis polynomial l_i(0) = prod_{j != i} x_j / (x_j - x_i); subtraction is xor.
        let mut basis = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(xj, inverse(xj ^ xs[i])));
            }
        }
        for (k, out) in secret.iter_mut().enumerate() {
            *out ^= mul(share[k], basis);
        }
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_recovers() {
        let secret = [42u8; 32];
        let shares = split(&secret, 3, 2).unwrap();
        assert!(shares.iter().all(|s| s.len() == 33));
        assert_eq!(shares[2][32], 3);
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let subset: Vec<_> = pair.iter().map(|&i| shares[i].clone()).collect();
            assert_eq!(combine(&subset).unwrap().as_slice(), &secret);
        }
        assert_eq!(combine(&shares).unwrap().as_slice(), &secret);
        assert!(combine(&shares[..1]).is_none());
    }

    #[test]
    fn at_most_255_shares_and_none_at_x_0() {
        let secret = [7u8; 32];
        let shares = split(&secret, MAX_SHARES, 2).unwrap();
        let xs: Vec<u8> = shares.iter().map(|s| s[32]).collect();
        assert_eq!(xs, (1..=255).collect::<Vec<u8>>());
        let last_two = [shares[253].clone(), shares[254].clone()];
        assert_eq!(combine(&last_two).unwrap().as_slice(), &secret);
        assert!(split(&secret, MAX_SHARES + 1, 2).is_none());
        assert!(split(&secret, 3, 4).is_none());
        assert!(split(&secret, 3, 1).is_none());
    }

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1);
        }
    }
}
