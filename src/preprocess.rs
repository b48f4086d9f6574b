//! Frame → model input: one pass from a mapped packed-RGB video frame (any size, stride and
//! channel order) to the model's normalised float NCHW input, resizing on the way.
//!
//! Everything here is plain data and functions so it can be tested without GStreamer.

use gst::glib;

/// ImageNet mean and standard deviation per RGB channel, as in torchvision's `Normalize`.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The channel order of the model's input planes (`color-order`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchColorOrder")]
pub enum ColorOrder {
    #[default]
    #[enum_value(name = "RGB: planes red, green, blue (torchvision)", nick = "rgb")]
    Rgb = 0,
    #[enum_value(name = "BGR: planes blue, green, red (OpenCV, Caffe)", nick = "bgr")]
    Bgr = 1,
}

/// How a frame becomes the model's square input (`resize`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchResize")]
pub enum ResizeMode {
    #[default]
    #[enum_value(
        name = "Stretch: the whole frame, squashed to the input size",
        nick = "stretch"
    )]
    Stretch = 0,
    #[enum_value(
        name = "Center crop: the largest centred square times crop-fraction (torchvision's \
                evaluation: 0.875, resize 256 + crop 224)",
        nick = "center-crop"
    )]
    CenterCrop = 1,
    #[enum_value(
        name = "Letterbox: the whole frame, aspect kept, padded with the mean colour",
        nick = "letterbox"
    )]
    Letterbox = 2,
}

/// The model's input per channel: `(pixel × pixel_scale − mean) / std`, pixel in 0..255, the
/// channels in the model's [`ColorOrder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub pixel_scale: f64,
}

impl Default for Normalization {
    /// torchvision's ImageNet normalisation of 0..1 pixels.
    fn default() -> Self {
        Normalization {
            mean: IMAGENET_MEAN.map(f64::from),
            std: IMAGENET_STD.map(f64::from),
            pixel_scale: 1.0 / 255.0,
        }
    }
}

/// Where R, G and B sit inside one packed pixel, and how many bytes a pixel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLayout {
    pub bytes_per_pixel: usize,
    /// Byte offsets of R, G and B inside a pixel.
    pub rgb_offsets: [usize; 3],
}

impl PixelLayout {
    pub const RGB: PixelLayout = PixelLayout::new(3, [0, 1, 2]);
    pub const BGR: PixelLayout = PixelLayout::new(3, [2, 1, 0]);
    /// RGBx and RGBA.
    pub const RGBX: PixelLayout = PixelLayout::new(4, [0, 1, 2]);
    /// BGRx and BGRA.
    pub const BGRX: PixelLayout = PixelLayout::new(4, [2, 1, 0]);
    /// xRGB and ARGB.
    pub const XRGB: PixelLayout = PixelLayout::new(4, [1, 2, 3]);
    /// xBGR and ABGR.
    pub const XBGR: PixelLayout = PixelLayout::new(4, [3, 2, 1]);

    /// Every layout above.
    pub const ALL: [PixelLayout; 6] = [
        PixelLayout::RGB,
        PixelLayout::BGR,
        PixelLayout::RGBX,
        PixelLayout::BGRX,
        PixelLayout::XRGB,
        PixelLayout::XBGR,
    ];

    pub const fn new(bytes_per_pixel: usize, rgb_offsets: [usize; 3]) -> Self {
        PixelLayout {
            bytes_per_pixel,
            rgb_offsets,
        }
    }
}

/// What is wrong with a frame handed to [`Preprocessor::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is zero.
    Empty,
    /// The stride is smaller than one row of pixels.
    StrideTooSmall { stride: usize, row_bytes: usize },
    /// The plane holds fewer bytes than height × stride says.
    TooShort { needed: usize, got: usize },
    /// The output slice is not 3 × out_width × out_height floats.
    OutputSize { needed: usize, got: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Empty => write!(f, "frame has zero width or height"),
            FrameError::StrideTooSmall { stride, row_bytes } => {
                write!(
                    f,
                    "stride {stride} is smaller than a row of {row_bytes} bytes"
                )
            }
            FrameError::TooShort { needed, got } => {
                write!(f, "frame needs {needed} bytes but the buffer holds {got}")
            }
            FrameError::OutputSize { needed, got } => {
                write!(
                    f,
                    "model input needs {needed} floats, got a buffer of {got}"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// One axis of a bilinear resize: for each output index, the two source indices and the weight
/// of the second one (half-pixel centres, like OpenCV's `INTER_LINEAR` and torch's
/// `interpolate(mode="bilinear", align_corners=False)`).
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    lo: Vec<usize>,
    hi: Vec<usize>,
    frac: Vec<f32>,
}

impl Axis {
    fn new(src: usize, dst: usize) -> Self {
        let scale = src as f64 / dst as f64;
        let mut axis = Axis {
            lo: Vec::with_capacity(dst),
            hi: Vec::with_capacity(dst),
            frac: Vec::with_capacity(dst),
        };
        let last = src.saturating_sub(1);
        for i in 0..dst {
            let pos = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let lo = (pos.floor() as usize).min(last);
            let hi = (lo + 1).min(last);
            let frac = if lo == last {
                0.0
            } else {
                (pos - lo as f64) as f32
            };
            axis.lo.push(lo);
            axis.hi.push(hi);
            axis.frac.push(frac);
        }
        axis
    }
}

/// Converts frames of one size and layout into the model's input. Built once per caps (it
/// precomputes the resize tables), then [`Preprocessor::run`] is called for every frame and writes
/// into a caller-owned buffer, so no allocation happens per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    width: usize,
    height: usize,
    layout: PixelLayout,
    out_width: usize,
    out_height: usize,
    /// value' = value * scale[c] + bias[c] turns a 0..255 byte into a normalised float.
    scale: [f32; 3],
    bias: [f32; 3],
    /// `None` when the frame already has the model's size.
    resize: Option<(Axis, Axis)>,
}

impl Preprocessor {
    pub fn new(
        width: usize,
        height: usize,
        layout: PixelLayout,
        out_width: usize,
        out_height: usize,
    ) -> Self {
        let mut scale = [0.0; 3];
        let mut bias = [0.0; 3];
        for c in 0..3 {
            scale[c] = 1.0 / (255.0 * IMAGENET_STD[c]);
            bias[c] = -IMAGENET_MEAN[c] / IMAGENET_STD[c];
        }
        let resize = if width == out_width && height == out_height {
            None
        } else {
            Some((Axis::new(width, out_width), Axis::new(height, out_height)))
        };
        Preprocessor {
            width,
            height,
            layout,
            out_width,
            out_height,
            scale,
            bias,
            resize,
        }
    }

    /// Number of floats the output buffer must hold: 3 × out_height × out_width.
    pub fn output_len(&self) -> usize {
        3 * self.out_width * self.out_height
    }

    pub fn resizes(&self) -> bool {
        self.resize.is_some()
    }

    /// Writes the normalised NCHW (batch 1, RGB planes) input for the frame in `data` (first row at
    /// offset 0, rows `stride` bytes apart) into `out`.
    pub fn run(&self, data: &[u8], stride: usize, out: &mut [f32]) -> Result<(), FrameError> {
        if self.width == 0 || self.height == 0 || self.out_width == 0 || self.out_height == 0 {
            return Err(FrameError::Empty);
        }
        let bpp = self.layout.bytes_per_pixel;
        let row_bytes = self.width * bpp;
        if stride < row_bytes {
            return Err(FrameError::StrideTooSmall { stride, row_bytes });
        }
        // The last row needs only its pixels, not the padding after them.
        let needed = (self.height - 1) * stride + row_bytes;
        if data.len() < needed {
            return Err(FrameError::TooShort {
                needed,
                got: data.len(),
            });
        }
        if out.len() != self.output_len() {
            return Err(FrameError::OutputSize {
                needed: self.output_len(),
                got: out.len(),
            });
        }

        let plane = self.out_width * self.out_height;
        let (r_plane, rest) = out.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        let [ro, go, bo] = self.layout.rgb_offsets;
        let [rs, gs, bs] = self.scale;
        let [rb, gb, bb] = self.bias;

        match &self.resize {
            None => {
                for y in 0..self.height {
                    let row = &data[y * stride..y * stride + row_bytes];
                    let o = y * self.out_width;
                    let (r, g, b) = (
                        &mut r_plane[o..o + self.out_width],
                        &mut g_plane[o..o + self.out_width],
                        &mut b_plane[o..o + self.out_width],
                    );
                    for (x, px) in row.chunks_exact(bpp).enumerate() {
                        r[x] = px[ro] as f32 * rs + rb;
                        g[x] = px[go] as f32 * gs + gb;
                        b[x] = px[bo] as f32 * bs + bb;
                    }
                }
            }
            Some((ax, ay)) => {
                for oy in 0..self.out_height {
                    let row0 = &data[ay.lo[oy] * stride..ay.lo[oy] * stride + row_bytes];
                    let row1 = &data[ay.hi[oy] * stride..ay.hi[oy] * stride + row_bytes];
                    let fy = ay.frac[oy];
                    let o = oy * self.out_width;
                    for ox in 0..self.out_width {
                        let x0 = ax.lo[ox] * bpp;
                        let x1 = ax.hi[ox] * bpp;
                        let fx = ax.frac[ox];
                        let w00 = (1.0 - fx) * (1.0 - fy);
                        let w01 = fx * (1.0 - fy);
                        let w10 = (1.0 - fx) * fy;
                        let w11 = fx * fy;
                        let sample = |off: usize| {
                            row0[x0 + off] as f32 * w00
                                + row0[x1 + off] as f32 * w01
                                + row1[x0 + off] as f32 * w10
                                + row1[x1 + off] as f32 * w11
                        };
                        r_plane[o + ox] = sample(ro) * rs + rb;
                        g_plane[o + ox] = sample(go) * gs + gb;
                        b_plane[o + ox] = sample(bo) * bs + bb;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: u8, c: usize) -> f32 {
        (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
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
            let p = Preprocessor::new(w, h, layout, w, h);
            assert!(!p.resizes());
            let mut out = vec![f32::NAN; p.output_len()];
            p.run(&data, stride, &mut out).unwrap();
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
        let p = Preprocessor::new(2, 1, PixelLayout::RGB, 4, 1);
        let mut out = vec![0.0; p.output_len()];
        p.run(&data, 6, &mut out).unwrap();
        let expect = [0.0f32, 25.0, 75.0, 100.0];
        for (o, e) in out[..4].iter().zip(expect) {
            let e = (e / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
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
        let p = Preprocessor::new(w, h, PixelLayout::BGR, 224, 224);
        assert!(p.resizes());
        let mut out = vec![0.0; p.output_len()];
        p.run(&data, stride, &mut out).unwrap();
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
        let p = Preprocessor::new(w, h, PixelLayout::BGRX, 224, 224);
        let mut out = vec![0.0; p.output_len()];
        p.run(&data, w * 4, &mut out).unwrap();
        // R grows left to right (x as u8 wraps at 256, so look at the first 80 columns).
        let row = &out[100 * 224..100 * 224 + 28];
        assert!(row.windows(2).all(|p| p[1] > p[0]));
        // G follows y: top row darker than a row further down.
        assert!(out[224 * 224] < out[224 * 224 + 20 * 224]);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let p = Preprocessor::new(4, 4, PixelLayout::RGBX, 224, 224);
        let mut out = vec![0.0; p.output_len()];
        assert_eq!(
            p.run(&[0; 16 * 3], 16, &mut out),
            Err(FrameError::TooShort {
                needed: 64,
                got: 48
            })
        );
        assert_eq!(
            p.run(&[0; 64], 8, &mut out),
            Err(FrameError::StrideTooSmall {
                stride: 8,
                row_bytes: 16
            })
        );
        assert!(matches!(
            p.run(&[0; 64], 16, &mut out[1..]),
            Err(FrameError::OutputSize { .. })
        ));
        let empty = Preprocessor::new(0, 4, PixelLayout::RGB, 224, 224);
        assert_eq!(empty.run(&[], 0, &mut out), Err(FrameError::Empty));
    }
}
