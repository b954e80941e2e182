//! Fuzzes the WAL record decoder: arbitrary bytes must decode, ask for more
//! bytes or fail with an error; never panic, never allocate without bound.
//! Whatever decodes must re-encode to a record that decodes to the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pulsestream_storage::wal::{decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    // The checksum stops almost every random input at the frame; frame the
    // input with a correct length and crc too, so the payload decoder
    // itself is exercised.
    let mut framed = Vec::with_capacity(data.len() + 8);
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    framed.extend_from_slice(data);
    if let Ok(Some((rec, used))) = decode_record(&framed) {
        assert_eq!(used, framed.len());
        let again = encode_record(rec.lsn, &rec.tenant, rec.first_seq, &rec.events)
            .expect("a decoded record re-encodes");
        assert!(matches!(decode_record(&again), Ok(Some(_))));
    }

    // Walk the input the way replay walks a file.
    let mut pos = 0;
    while pos < data.len() {
        match decode_record(&data[pos..]) {
            Ok(Some((rec, used))) => {
                assert!(used > 0 && used <= data.len() - pos);
                let again = encode_record(rec.lsn, &rec.tenant, rec.first_seq, &rec.events)
                    .expect("a decoded record re-encodes");
                match decode_record(&again) {
                    Ok(Some((rec2, n))) => {
                        assert_eq!(n, again.len());
                        // NaN latencies compare unequal; compare the bytes instead.
                        let again2 = encode_record(rec2.lsn, &rec2.tenant, rec2.first_seq, &rec2.events)
                            .expect("re-encode");
                        assert_eq!(again, again2);
                    }
                    other => panic!("re-encoded record does not decode: {other:?}"),
                }
                pos += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
