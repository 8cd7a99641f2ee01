//! The provenance record of an MPEG-TS segment (our private packet), as players
//! read it; what is inserted is found again.
#![no_main]
use hearth_media::ts;
use hearth_media::provenance::ProvenanceRecord;
use hearth_model::{BindingEpoch, CameraId, UnixMillis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ts::locate_provenance(data);
    let _ = ProvenanceRecord::decode(data);
    let rec = ProvenanceRecord {
        camera: CameraId::from_bytes([3; 16]),
        epoch: BindingEpoch(2),
        seq: 9,
        capture_time: UnixMillis(1),
        tag: [7; 32],
    };
    if let Ok(out) = ts::insert_provenance(data, &rec) {
        assert_eq!(ts::find_provenance(&out), Some(rec), "inserted record lost");
    }
});
