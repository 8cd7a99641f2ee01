//! The limit on segments held in memfds (its own process: the limit is global).

use bytes::Bytes;
use std::io::IoSlice;

fn sealed(b: &Bytes) -> bool {
    hearth_zerocopy::first_sealed(&[IoSlice::new(b)]) == Some(0)
}

#[test]
fn past_the_limit_segments_stay_on_the_heap_until_one_is_dropped() {
    hearth_zerocopy::set_limit(2);
    let seg = |n: u8| hearth_zerocopy::seal(Bytes::from(vec![n; 100_000]));
    let (a, b, c) = (seg(1), seg(2), seg(3));
    assert!(sealed(&a) && sealed(&b));
    assert!(!sealed(&c), "the third stays on the heap");
    assert_eq!(&c[..], &[3; 100_000][..], "with the same bytes");
    assert_eq!(hearth_zerocopy::held(), 2);
    drop(a);
    assert_eq!(hearth_zerocopy::held(), 1);
    let d = seg(4);
    assert!(sealed(&d), "room again once one is dropped");
    assert_eq!(&d[..], &[4; 100_000][..]);
}
