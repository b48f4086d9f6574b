//! Unit tests of the preprocessing: every pixel format, resize mode, region and bad frame.

use super::*;
use crate::frame::*;

fn packed(w: usize, h: usize, layout: PixelLayout, ow: usize, oh: usize) -> Preprocessor {
    Preprocessor::new(FrameFormat::rgb(w, h, layout), &InputSpec::new(ow, oh))
}

/// Runs `spec` on an RGB frame given as rows of (r, g, b) pixels.
fn run_rgb(pixels: &[Vec<[u8; 3]>], spec: &InputSpec) -> Vec<f32> {
    let (w, h) = (pixels[0].len(), pixels.len());
    let data: Vec<u8> = pixels.iter().flatten().flatten().copied().collect();
    let p = Preprocessor::new(FrameFormat::rgb(w, h, PixelLayout::RGB), spec);
    let mut out = vec![f32::NAN; p.output_len()];
    p.run(&[&data], &[w * 3], &mut out).unwrap();
    out
}

/// Raw 0..255 values out: pixel-scale 1, mean 0, std 1.
fn raw(size: usize) -> InputSpec {
    InputSpec {
        normalization: Normalization {
            mean: [0.0; 3],
            std: [1.0; 3],
            pixel_scale: 1.0,
        },
        ..InputSpec::new(size, size)
    }
}

/// BT.601 limited-range YUV of an RGB colour, as a converter upstream would make it.
fn yuv601(rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(f64::from);
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let u = (b - y) / 1.772;
    let v = (r - y) / 1.402;
    [
        (16.0 + y * 219.0 / 255.0).round() as u8,
        (128.0 + u * 224.0 / 255.0).round() as u8,
        (128.0 + v * 224.0 / 255.0).round() as u8,
    ]
}

/// A `w` x `h` frame (even sizes) of `colour(x, y)` in `format`, BT.601 limited range:
/// its planes and strides (padded, to show a stride is honoured). Chroma is the 2x2 (or
/// 2x1) block's top-left pixel's.
fn yuv_frame(
    w: usize,
    h: usize,
    format: PixelFormat,
    colour: impl Fn(usize, usize) -> [u8; 3],
) -> (Vec<Vec<u8>>, Vec<usize>) {
    let yuv = |x, y| yuv601(colour(x, y));
    let pad = 5;
    match format {
        PixelFormat::Yuv420 { u_plane, v_plane } => {
            let (cw, ch) = (w / 2, h / 2);
            let mut planes = vec![
                vec![0u8; (w + pad) * h],
                vec![0; (cw + pad) * ch],
                vec![0; (cw + pad) * ch],
            ];
            for y in 0..h {
                for x in 0..w {
                    planes[0][y * (w + pad) + x] = yuv(x, y)[0];
                }
            }
            for y in 0..ch {
                for x in 0..cw {
                    let [_, u, v] = yuv(2 * x, 2 * y);
                    planes[u_plane][y * (cw + pad) + x] = u;
                    planes[v_plane][y * (cw + pad) + x] = v;
                }
            }
            (planes, vec![w + pad, cw + pad, cw + pad])
        }
        PixelFormat::SemiPlanar420 { v_first } => {
            let (cw, ch) = (w / 2, h / 2);
            let mut planes = vec![vec![0u8; (w + pad) * h], vec![0; (2 * cw + pad) * ch]];
            for y in 0..h {
                for x in 0..w {
                    planes[0][y * (w + pad) + x] = yuv(x, y)[0];
                }
            }
            for y in 0..ch {
                for x in 0..cw {
                    let [_, u, v] = yuv(2 * x, 2 * y);
                    let (a, b) = if v_first { (v, u) } else { (u, v) };
                    planes[1][y * (2 * cw + pad) + 2 * x] = a;
                    planes[1][y * (2 * cw + pad) + 2 * x + 1] = b;
                }
            }
            (planes, vec![w + pad, 2 * cw + pad])
        }
        PixelFormat::Packed422 {
            y: yo,
            u: uo,
            v: vo,
        } => {
            let stride = 2 * w + pad;
            let mut plane = vec![0u8; stride * h];
            for y in 0..h {
                for x in (0..w).step_by(2) {
                    let [y0, u, v] = yuv(x, y);
                    let y1 = yuv(x + 1, y)[0];
                    let g = y * stride + 2 * x;
                    plane[g + yo] = y0;
                    plane[g + yo + 2] = y1;
                    plane[g + uo] = u;
                    plane[g + vo] = v;
                }
            }
            (vec![plane], vec![stride])
        }
        PixelFormat::Gray => {
            let plane = (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| colour(x, y)[1])
                .collect();
            (vec![plane], vec![w])
        }
        PixelFormat::Rgb(_) => unreachable!("YUV and gray only"),
    }
}

/// Runs `spec` on a frame in a YUV `format` (BT.601 limited) made from `colour`.
fn run_yuv(
    w: usize,
    h: usize,
    format: PixelFormat,
    spec: &InputSpec,
    colour: impl Fn(usize, usize) -> [u8; 3],
) -> Vec<f32> {
    let (planes, strides) = yuv_frame(w, h, format, colour);
    let p = Preprocessor::new(
        FrameFormat {
            width: w,
            height: h,
            pixels: format,
            matrix: YuvMatrix::bt601(false),
        },
        spec,
    );
    let mut out = vec![f32::NAN; p.output_len()];
    let planes: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
    p.run(&planes, &strides, &mut out).unwrap();
    out
}

#[test]
fn every_yuv_format_gives_the_rgb_it_encodes() {
    // Flat colours, saturated and not: back within a couple of levels of 0..255 after the
    // 8-bit round trip.
    for colour in [
        [200u8, 30, 40],
        [20, 180, 60],
        [30, 60, 220],
        [128, 128, 128],
        [255, 255, 0],
    ] {
        for format in PixelFormat::YUV {
            for size in [16, 5] {
                let out = run_yuv(32, 24, format, &raw(size), |_, _| colour);
                let plane = size * size;
                for c in 0..3 {
                    let want = colour[c] as f32;
                    let worst = out[c * plane..(c + 1) * plane]
                        .iter()
                        .map(|v| (v - want).abs())
                        .fold(0.0, f32::max);
                    assert!(
                        worst <= 2.5,
                        "{format:?} {colour:?} channel {c}: off by {worst}"
                    );
                }
            }
        }
    }
}

#[test]
fn yuv_formats_agree_with_each_other_and_with_rgb_on_a_picture() {
    // A picture with edges and gradients, 64x48 into 20x20: every format samples the same
    // points; luma is exact, chroma at half resolution, so they agree on average.
    let colour = |x: usize, y: usize| {
        [
            (x * 4) as u8,
            if (x / 8 + y / 8).is_multiple_of(2) {
                200
            } else {
                40
            },
            (255 - y * 5) as u8,
        ]
    };
    let rgb: Vec<Vec<[u8; 3]>> = (0..48)
        .map(|y| (0..64).map(|x| colour(x, y)).collect())
        .collect();
    let want = run_rgb(&rgb, &raw(20));
    let i420 = run_yuv(64, 48, PixelFormat::I420, &raw(20), colour);
    for format in PixelFormat::YUV {
        let out = run_yuv(64, 48, format, &raw(20), colour);
        if matches!(
            format,
            PixelFormat::Yuv420 { .. } | PixelFormat::SemiPlanar420 { .. }
        ) {
            assert_eq!(out, i420, "{format:?} samples other points than I420");
        }
        let mean_error = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / out.len() as f32;
        assert!(
            mean_error < 6.0,
            "{format:?}: mean error {mean_error} levels"
        );
    }
}

#[test]
fn matrix_and_range_come_from_the_caps() {
    let pixel = |format: PixelFormat, matrix: YuvMatrix, yuv: [u8; 3]| {
        let (planes, strides) = match format {
            PixelFormat::I420 => (
                vec![vec![yuv[0]; 4], vec![yuv[1]], vec![yuv[2]]],
                vec![2, 1, 1],
            ),
            _ => unreachable!(),
        };
        let p = Preprocessor::new(
            FrameFormat {
                width: 2,
                height: 2,
                pixels: format,
                matrix,
            },
            &raw(1),
        );
        let mut out = vec![0.0; 3];
        let planes: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
        p.run(&planes, &strides, &mut out).unwrap();
        out
    };
    // Limited range: 16 is black, 235 white; full range: 16 is dark grey.
    assert_eq!(
        pixel(PixelFormat::I420, YuvMatrix::bt601(false), [16, 128, 128]),
        vec![0.0; 3]
    );
    let white = pixel(PixelFormat::I420, YuvMatrix::bt601(false), [235, 128, 128]);
    assert!(white.iter().all(|v| (v - 255.0).abs() < 1e-3), "{white:?}");
    assert_eq!(
        pixel(PixelFormat::I420, YuvMatrix::bt601(true), [16, 128, 128]),
        vec![16.0; 3]
    );
    // The same strong red in BT.601 and BT.709 decodes differently.
    let v601 = pixel(PixelFormat::I420, YuvMatrix::bt601(false), [81, 90, 240]);
    let v709 = pixel(PixelFormat::I420, YuvMatrix::bt709(false), [81, 90, 240]);
    assert!(
        (v601[0] - 255.0).abs() < 2.0 && v601[1] < 2.0 && v601[2] < 2.0,
        "{v601:?}"
    );
    assert!((v709[1] - v601[1]).abs() > 10.0, "{v601:?} vs {v709:?}");
}

#[test]
fn gray_is_the_same_on_every_channel() {
    let out = run_yuv(8, 6, PixelFormat::Gray, &raw(3), |x, _| {
        [0, (x * 30) as u8, 0]
    });
    assert!(out[..9].iter().zip(&out[9..18]).all(|(a, b)| a == b));
    assert!(out[..9].iter().zip(&out[18..]).all(|(a, b)| a == b));
    assert!(out[0] < out[2]);
}

#[test]
fn normalisation_and_colour_order() {
    let frame = vec![vec![[10u8, 20, 30]; 4]; 4];
    let spec = InputSpec {
        normalization: Normalization {
            mean: [1.0, 2.0, 3.0],
            std: [2.0, 4.0, 0.5],
            pixel_scale: 0.5,
        },
        ..InputSpec::new(4, 4)
    };
    let rgb = run_rgb(&frame, &spec);
    // (pixel × 0.5 − mean) / std, per model channel.
    assert_eq!(
        [rgb[0], rgb[16], rgb[32]],
        [(5.0 - 1.0) / 2.0, (10.0 - 2.0) / 4.0, (15.0 - 3.0) / 0.5]
    );
    let bgr = run_rgb(
        &frame,
        &InputSpec {
            color_order: ColorOrder::Bgr,
            ..spec
        },
    );
    // Plane 0 is blue now, normalised with the first mean and std.
    assert_eq!(
        [bgr[0], bgr[16], bgr[32]],
        [(15.0 - 1.0) / 2.0, (10.0 - 2.0) / 4.0, (5.0 - 3.0) / 0.5]
    );
}

/// Three 8x8 squares side by side: red, green, blue.
fn three_squares() -> Vec<Vec<[u8; 3]>> {
    (0..8)
        .map(|_| {
            (0..24)
                .map(|x| match x / 8 {
                    0 => [255, 0, 0],
                    1 => [0, 255, 0],
                    _ => [0, 0, 255],
                })
                .collect()
        })
        .collect()
}

#[test]
fn center_crop_takes_the_middle_square() {
    for fraction in [1.0, 0.875, 0.5] {
        let spec = InputSpec {
            resize: ResizeMode::CenterCrop,
            crop_fraction: fraction,
            ..raw(4)
        };
        let out = run_rgb(&three_squares(), &spec);
        assert!(
            out[..16].iter().all(|&r| r == 0.0),
            "{fraction}: red in the crop"
        );
        assert!(
            out[16..32].iter().all(|&g| g == 255.0),
            "{fraction}: not all green"
        );
    }
    // Stretch sees all three.
    let out = run_rgb(&three_squares(), &raw(6));
    assert_eq!((out[0], out[36 + 2], out[72 + 5]), (255.0, 255.0, 255.0));
}

#[test]
fn letterbox_keeps_the_aspect_and_pads_with_the_mean() {
    let spec = InputSpec {
        resize: ResizeMode::Letterbox,
        ..InputSpec::new(6, 6)
    };
    // 24x8 → 6x2 in rows 2 and 3; the bars are the mean colour: 0 once normalised.
    let out = run_rgb(&three_squares(), &spec);
    for c in 0..3 {
        let plane = &out[c * 36..(c + 1) * 36];
        assert!(plane[..12].iter().chain(&plane[24..]).all(|&v| v == 0.0));
    }
    let red =
        |x: usize, y: usize| out[y * 6 + x] * IMAGENET_STD[0] as f32 + IMAGENET_MEAN[0] as f32;
    assert!((red(0, 2) - 1.0).abs() < 1e-5 && (red(0, 3) - 1.0).abs() < 1e-5);
    assert!(red(5, 2).abs() < 1e-5);
    // A tall frame gets bars left and right.
    let tall: Vec<Vec<[u8; 3]>> = vec![vec![[255, 255, 255]; 2]; 6];
    let out = run_rgb(
        &tall,
        &InputSpec {
            resize: ResizeMode::Letterbox,
            ..raw(6)
        },
    );
    assert_eq!(&out[..6], &[0.0, 0.0, 255.0, 255.0, 0.0, 0.0]);
}

#[test]
fn letterbox_bars_take_the_pad_colour_in_the_models_channel_order() {
    let tall: Vec<Vec<[u8; 3]>> = vec![vec![[255, 255, 255]; 2]; 6];
    let spec = InputSpec {
        resize: ResizeMode::Letterbox,
        color_order: ColorOrder::Bgr,
        pad: Some([10, 20, 30]),
        ..raw(6)
    };
    let out = run_rgb(&tall, &spec);
    // BGR planes: blue first.
    assert_eq!(&out[..6], &[30.0, 30.0, 255.0, 255.0, 30.0, 30.0]);
    assert_eq!(&out[36..42], &[20.0, 20.0, 255.0, 255.0, 20.0, 20.0]);
    assert_eq!(&out[72..78], &[10.0, 10.0, 255.0, 255.0, 10.0, 10.0]);
}

#[test]
fn the_mapping_is_the_letterbox_crop_or_stretch_done() {
    use crate::geometry::Mapping;
    let mapping = |w: usize, h: usize, resize, size: usize| {
        let spec = InputSpec {
            resize,
            ..InputSpec::new(size, size)
        };
        Preprocessor::new(FrameFormat::rgb(w, h, PixelLayout::RGB), &spec).mapping()
    };
    for (w, h) in [(640, 480), (480, 640), (1920, 1080), (641, 480)] {
        assert_eq!(
            mapping(w, h, ResizeMode::Letterbox, 640),
            Mapping::letterbox(w as u32, h as u32, 640, 640),
            "{w}x{h}"
        );
        assert_eq!(
            mapping(w, h, ResizeMode::Stretch, 320),
            Mapping::stretch(w as u32, h as u32, 320, 320),
            "{w}x{h}"
        );
        let crop = mapping(w, h, ResizeMode::CenterCrop, 224);
        let theirs = Mapping::center_crop(w as u32, h as u32, 224, 224, DEFAULT_CROP_FRACTION);
        for (a, b) in [
            (crop.scale_x, theirs.scale_x),
            (crop.scale_y, theirs.scale_y),
            (crop.offset_x, theirs.offset_x),
            (crop.offset_y, theirs.offset_y),
        ] {
            assert!((a - b).abs() < 1e-3, "{w}x{h}: {crop:?} vs {theirs:?}");
        }
    }
    // 640x480 letterboxed into 640x640: 80 rows of bars above, the frame's (0, 0) at (0, 80).
    let m = mapping(640, 480, ResizeMode::Letterbox, 640);
    assert_eq!(m.to_input(0.0, 0.0), (0.0, 80.0));
    assert_eq!(m.to_frame(100.0, 180.0), (100.0, 100.0));
}

#[test]
fn yuv_takes_resize_modes_too() {
    // The middle third of a wide I420 frame, centre-cropped.
    let colour = |x: usize, _| {
        if (16..32).contains(&x) {
            [0, 255, 0]
        } else {
            [255, 0, 0]
        }
    };
    let spec = InputSpec {
        resize: ResizeMode::CenterCrop,
        crop_fraction: 0.875,
        ..raw(4)
    };
    for format in PixelFormat::YUV {
        let out = run_yuv(48, 16, format, &spec, colour);
        assert!(
            out[..16].iter().all(|&r| r < 3.0),
            "{format:?}: red in the crop {:?}",
            &out[..16]
        );
        assert!(out[16..32].iter().all(|&g| g > 250.0), "{format:?}");
    }
}

#[test]
fn a_region_is_cropped_from_the_frame_in_any_format() {
    // The middle square (green) of three, as a region: packed RGB and every YUV layout.
    let spec = raw(4);
    let frame = three_squares();
    let data: Vec<u8> = frame.iter().flatten().flatten().copied().collect();
    let mut p = Preprocessor::new(FrameFormat::rgb(24, 8, PixelLayout::RGB), &spec);
    let mut out = vec![f32::NAN; p.output_len()];
    p.set_region(Some((8, 0, 8, 8)));
    p.run(&[&data], &[72], &mut out).unwrap();
    assert!(out[..16].iter().all(|&r| r == 0.0) && out[16..32].iter().all(|&g| g == 255.0));
    // Back to the whole frame: red on the left again.
    p.set_region(None);
    p.run(&[&data], &[72], &mut out).unwrap();
    assert_eq!(out[0], 255.0);
    // Partly outside: clipped to the frame (the blue square's right half is outside).
    p.set_region(Some((16, 0, 16, 8)));
    p.run(&[&data], &[72], &mut out).unwrap();
    assert!(out[32..].iter().all(|&b| b == 255.0));
    // Empty or wholly outside: the mean colour, no panic.
    for region in [
        (0, 0, 0, 8),
        (30, 0, 5, 5),
        (u32::MAX, u32::MAX, u32::MAX, u32::MAX),
    ] {
        p.set_region(Some(region));
        p.run(&[&data], &[72], &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 0.0), "{region:?}");
    }
    for format in PixelFormat::YUV {
        let colour = |x: usize, _| {
            if (16..32).contains(&x) {
                [0, 255, 0]
            } else {
                [255, 0, 0]
            }
        };
        let (planes, strides) = yuv_frame(48, 16, format, colour);
        let mut p = Preprocessor::new(
            FrameFormat {
                width: 48,
                height: 16,
                pixels: format,
                matrix: YuvMatrix::bt601(false),
            },
            &spec,
        );
        p.set_region(Some((18, 2, 12, 12)));
        let planes: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
        p.run(&planes, &strides, &mut out).unwrap();
        assert!(out[..16].iter().all(|&r| r < 3.0), "{format:?}");
        assert!(out[16..32].iter().all(|&g| g > 250.0), "{format:?}");
    }
}

#[test]
fn yuv_frames_too_short_or_missing_a_plane_are_errors() {
    let i420 = Preprocessor::new(
        FrameFormat {
            width: 5,
            height: 3,
            pixels: PixelFormat::I420,
            matrix: YuvMatrix::default(),
        },
        &InputSpec::new(4, 4),
    );
    let mut out = vec![0.0; i420.output_len()];
    // Chroma planes of odd sizes round up: 3x2.
    let (y, c) = (vec![0u8; 15], vec![0u8; 6]);
    assert_eq!(i420.run(&[&y, &c, &c], &[5, 3, 3], &mut out), Ok(()));
    assert_eq!(
        i420.run(&[&y, &c], &[5, 3], &mut out),
        Err(FrameError::MissingPlane { plane: 2 })
    );
    assert_eq!(
        i420.run(&[&y, &c, &c[..5]], &[5, 3, 3], &mut out),
        Err(FrameError::TooShort {
            plane: 2,
            needed: 6,
            got: 5
        })
    );
    assert_eq!(
        i420.run(&[&y, &c, &c], &[5, 2, 3], &mut out),
        Err(FrameError::StrideTooSmall {
            plane: 1,
            stride: 2,
            row_bytes: 3
        })
    );
    let yuy2 = Preprocessor::new(
        FrameFormat {
            width: 5,
            height: 2,
            pixels: PixelFormat::YUY2,
            matrix: YuvMatrix::default(),
        },
        &InputSpec::new(4, 4),
    );
    // 5 pixels take 3 groups of four bytes.
    assert_eq!(
        yuy2.run(&[&[0; 22]], &[11], &mut out),
        Err(FrameError::StrideTooSmall {
            plane: 0,
            stride: 11,
            row_bytes: 12
        })
    );
    assert_eq!(yuy2.run(&[&[0; 24]], &[12], &mut out), Ok(()));
}

fn norm(v: u8, c: usize) -> f32 {
    (v as f32 / 255.0 - IMAGENET_MEAN[c] as f32) / IMAGENET_STD[c] as f32
}

/// A frame whose pixel (x, y) has R = x, G = y, B = 255 - x, written in `layout` with
/// `stride` bytes per row (padding filled with 0xEE so reading it would show).
fn gradient(w: usize, h: usize, layout: PixelLayout, stride: usize) -> Vec<u8> {
    let mut data = vec![0xEE; stride * h];
    for y in 0..h {
        for x in 0..w {
            let p = y * stride + x * layout.bytes_per_pixel;
            for b in 0..layout.bytes_per_pixel {
                data[p + b] = 0x77; // padding byte of x/A channels
            }
            data[p + layout.rgb_offsets[0]] = x as u8;
            data[p + layout.rgb_offsets[1]] = y as u8;
            data[p + layout.rgb_offsets[2]] = 255 - x as u8;
        }
    }
    data
}

#[test]
fn same_size_is_a_normalised_copy_in_every_layout() {
    for layout in PixelLayout::ALL {
        let (w, h) = (5, 3);
        let stride = w * layout.bytes_per_pixel + 3;
        let data = gradient(w, h, layout, stride);
        let p = packed(w, h, layout, w, h);
        assert!(!p.resizes());
        let mut out = vec![f32::NAN; p.output_len()];
        p.run(&[&data], &[stride], &mut out).unwrap();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                assert!(
                    (out[i] - norm(x as u8, 0)).abs() < 1e-5,
                    "{layout:?} R at {x},{y}"
                );
                assert!((out[w * h + i] - norm(y as u8, 1)).abs() < 1e-5);
                assert!((out[2 * w * h + i] - norm(255 - x as u8, 2)).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn upscale_by_two_interpolates_between_neighbours() {
    // 2x1 frame R = 0 and 100 -> 4x1: half-pixel centres give 0, 25, 75, 100.
    let data = [0u8, 0, 0, 100, 0, 0];
    let p = packed(2, 1, PixelLayout::RGB, 4, 1);
    let mut out = vec![0.0; p.output_len()];
    p.run(&[&data], &[6], &mut out).unwrap();
    let expect = [0.0f32, 25.0, 75.0, 100.0];
    for (o, e) in out[..4].iter().zip(expect) {
        let e = (e / 255.0 - IMAGENET_MEAN[0] as f32) / IMAGENET_STD[0] as f32;
        assert!((o - e).abs() < 1e-5, "{o} vs {e}");
    }
}

#[test]
fn downscale_of_a_flat_frame_stays_flat_and_reads_no_padding() {
    let (w, h) = (225, 223);
    let stride = 676; // 225 * 3 = 675 rounded up to 4, as videoconvert pads RGB rows
    let mut data = vec![0xFFu8; stride * h];
    for y in 0..h {
        for x in 0..w {
            data[y * stride + x * 3..y * stride + x * 3 + 3].copy_from_slice(&[10, 20, 30]);
        }
    }
    // The last row may end right after its pixels.
    data.truncate((h - 1) * stride + w * 3);
    let p = packed(w, h, PixelLayout::BGR, 224, 224);
    assert!(p.resizes());
    let mut out = vec![0.0; p.output_len()];
    p.run(&[&data], &[stride], &mut out).unwrap();
    let plane = 224 * 224;
    for (c, v) in [(0, 30u8), (1, 20), (2, 10)] {
        let want = norm(v, c);
        assert!(
            out[c * plane..(c + 1) * plane]
                .iter()
                .all(|o| (o - want).abs() < 1e-4)
        );
    }
}

#[test]
fn downscale_keeps_left_right_order() {
    let (w, h) = (640, 480);
    let data = gradient(w, h, PixelLayout::BGRX, w * 4);
    let p = packed(w, h, PixelLayout::BGRX, 224, 224);
    let mut out = vec![0.0; p.output_len()];
    p.run(&[&data], &[w * 4], &mut out).unwrap();
    // R grows left to right (x as u8 wraps at 256, so look at the first 80 columns).
    let row = &out[100 * 224..100 * 224 + 28];
    assert!(row.windows(2).all(|p| p[1] > p[0]));
    // G follows y: top row darker than a row further down.
    assert!(out[224 * 224] < out[224 * 224 + 20 * 224]);
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let p = packed(4, 4, PixelLayout::RGBX, 224, 224);
    let mut out = vec![0.0; p.output_len()];
    assert_eq!(
        p.run(&[&[0; 16 * 3]], &[16], &mut out),
        Err(FrameError::TooShort {
            plane: 0,
            needed: 64,
            got: 48
        })
    );
    assert_eq!(
        p.run(&[&[0; 64]], &[8], &mut out),
        Err(FrameError::StrideTooSmall {
            plane: 0,
            stride: 8,
            row_bytes: 16
        })
    );
    assert!(matches!(
        p.run(&[&[0; 64]], &[16], &mut out[1..]),
        Err(FrameError::OutputSize { .. })
    ));
    let empty = packed(0, 4, PixelLayout::RGB, 224, 224);
    assert_eq!(empty.run(&[&[]], &[0], &mut out), Err(FrameError::Empty));
}
