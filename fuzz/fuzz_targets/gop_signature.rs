//! The GOP-signature SEI: the verifier over arbitrary access units, and the
//! property that whatever the signer signs, the verifier verifies.
#![no_main]
use hearth_media::signing::{GopSigner, GopVerifier, Verdict, gop_signing_key};
use hearth_model::UnixMillis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = gop_signing_key("fuzz");
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let len = [1u8, 2, 4][usize::from(first % 3)];
    // Access units: a length byte, a keyframe flag bit in it, then the bytes.
    let mut aus = Vec::new();
    let mut r = rest;
    while let Some((&h, tail)) = r.split_first() {
        let n = usize::from(h >> 1).min(tail.len());
        aus.push((h & 1 == 1, &tail[..n]));
        r = &tail[n..];
    }
    let mut verifier = GopVerifier::new(key);
    for (keyframe, au) in &aus {
        let _ = verifier.push(au, len, *keyframe);
    }
    let mut signer = GopSigner::new(key, None);
    let mut check = GopVerifier::new(key);
    for (keyframe, au) in &aus {
        let Ok(signed) = signer.sign(au, len, *keyframe, UnixMillis(0)) else {
            // Not part of the chain: the verifier never sees it.
            continue;
        };
        match check.push(&signed, len, *keyframe) {
            Ok(Verdict::Verified { .. }) => assert!(*keyframe),
            Ok(Verdict::Pending | Verdict::Unsigned) => assert!(!*keyframe),
            Err(e) => panic!("the verifier refused what the signer signed: {e}"),
        }
    }
});
