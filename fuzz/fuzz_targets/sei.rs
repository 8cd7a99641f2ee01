//! SEI parsing in camera access units: user-data-unregistered messages, the
//! provenance SEI, and SEI insertion before the first slice.
#![no_main]
use hearth_media::sei;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, au)) = data.split_first() else {
        return;
    };
    let len = first % 5;
    let _ = sei::find_user_data_unregistered(au, len, [0x5a; 16]);
    let _ = sei::find_provenance(au, len);
    let nal = sei::user_data_unregistered_nal([0x5a; 16], &data[..data.len().min(40)]);
    if let Ok(out) = sei::insert_before_first_slice(au, len, &nal) {
        // What we insert must be found again.
        assert!(
            sei::find_user_data_unregistered(&out, len, [0x5a; 16]).is_some(),
            "inserted SEI not found"
        );
    }
});
