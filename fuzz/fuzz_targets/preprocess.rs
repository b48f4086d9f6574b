//! Any frame size, stride, layout, output size and byte content: `Preprocessor::run` returns
//! Ok or an error, never panics or reads out of bounds, and Ok output is finite.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/preprocess.rs"]
mod preprocess;

use preprocess::{PixelLayout, Preprocessor};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, frame) = data.split_at(8);
    let width = 1 + head[0] as usize % 64;
    let height = 1 + head[1] as usize % 64;
    let layout = PixelLayout::ALL[head[2] as usize % PixelLayout::ALL.len()];
    // Strides from too small to padded.
    let stride = (width * layout.bytes_per_pixel).saturating_sub(2) + head[3] as usize % 16;
    let out_w = 1 + head[4] as usize % 48;
    let out_h = 1 + head[5] as usize % 48;
    let p = Preprocessor::new(width, height, layout, out_w, out_h);
    let mut out = vec![0.0f32; p.output_len() - (head[6] % 2) as usize];
    if p.run(frame, stride, &mut out).is_ok() {
        assert!(out.iter().all(|v| v.is_finite()));
    }
});
