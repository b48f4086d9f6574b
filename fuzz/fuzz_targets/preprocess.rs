//! Any frame size, stride, pixel format (packed RGB, YUV, gray), output size, resize mode and
//! byte content: `Preprocessor::run` returns Ok or an error, never panics or reads out of
//! bounds, and Ok output is finite.
#![no_main]

use libfuzzer_sys::fuzz_target;

use torchcore::frame::{FrameFormat, PixelFormat, PixelLayout, YuvMatrix};
use torchcore::preprocess::{InputSpec, Preprocessor, ResizeMode};

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let (head, frame) = data.split_at(12);
    let width = 1 + head[0] as usize % 64;
    let height = 1 + head[1] as usize % 64;
    // Packed RGB layouts, the YUV layouts, then gray.
    let n = PixelLayout::ALL.len() + PixelFormat::YUV.len() + 1;
    let pick = head[2] as usize % n;
    let pixels = match (
        PixelLayout::ALL.get(pick),
        PixelFormat::YUV.get(pick.wrapping_sub(PixelLayout::ALL.len())),
    ) {
        (Some(&layout), _) => PixelFormat::Rgb(layout),
        (None, Some(&yuv)) => yuv,
        (None, None) => PixelFormat::Gray,
    };
    let out_w = 1 + head[4] as usize % 48;
    let out_h = 1 + head[5] as usize % 48;
    let resize = [ResizeMode::Stretch, ResizeMode::CenterCrop, ResizeMode::Letterbox]
        [head[7] as usize % 3];
    let spec = InputSpec {
        resize,
        crop_fraction: (1 + head[8] as usize % 100) as f64 / 100.0,
        ..InputSpec::new(out_w, out_h)
    };
    let format = FrameFormat {
        width,
        height,
        pixels,
        matrix: YuvMatrix::bt709(head[9] % 2 == 0),
    };
    let p = Preprocessor::new(format, &spec);
    // Up to three planes cut from the data, strides from too small to padded.
    let base = width.saturating_sub(2) + head[3] as usize % 16;
    let strides = [base * 4, base, base * 2];
    let cut = frame.len() / 3;
    let planes = [&frame[..cut], &frame[cut..2 * cut], &frame[2 * cut..]];
    let count = 1 + head[10] as usize % 3;
    let mut out = vec![0.0f32; p.output_len() - (head[6] % 2) as usize];
    if p.run(&planes[..count], &strides[..count], &mut out).is_ok() {
        assert!(out.iter().all(|v| v.is_finite()));
    }
});
