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

/// How a frame's bytes hold its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed RGB in one plane.
    Rgb(PixelLayout),
    /// 8-bit luma only (GRAY8): R = G = B = Y.
    Gray,
    /// A Y plane, then U and V planes at half width and half height.
    Yuv420 { u_plane: usize, v_plane: usize },
    /// A Y plane and one plane of interleaved chroma pairs at half width and half height.
    SemiPlanar420 { v_first: bool },
    /// One plane, two pixels in four bytes: the byte offsets of the first Y, of U and of V in
    /// each group of four.
    Packed422 { y: usize, u: usize, v: usize },
}

impl PixelFormat {
    pub const I420: PixelFormat = PixelFormat::Yuv420 {
        u_plane: 1,
        v_plane: 2,
    };
    pub const YV12: PixelFormat = PixelFormat::Yuv420 {
        u_plane: 2,
        v_plane: 1,
    };
    pub const NV12: PixelFormat = PixelFormat::SemiPlanar420 { v_first: false };
    pub const NV21: PixelFormat = PixelFormat::SemiPlanar420 { v_first: true };
    /// Y0 U Y1 V.
    pub const YUY2: PixelFormat = PixelFormat::Packed422 { y: 0, u: 1, v: 3 };
    /// U Y0 V Y1.
    pub const UYVY: PixelFormat = PixelFormat::Packed422 { y: 1, u: 0, v: 2 };

    /// Every YUV layout above.
    pub const YUV: [PixelFormat; 6] = [
        PixelFormat::I420,
        PixelFormat::YV12,
        PixelFormat::NV12,
        PixelFormat::NV21,
        PixelFormat::YUY2,
        PixelFormat::UYVY,
    ];

    /// How the format is sampled: its grids (bytes between samples and the subsampling, one
    /// per distinct kind: packed RGB and gray have one, YUV a luma and a chroma grid), and its
    /// channels (R G B, Y U V or Y alone) as grid, plane and byte offset of the first sample.
    fn sampling(self) -> (Vec<GridSpec>, Vec<(usize, usize, usize)>) {
        match self {
            PixelFormat::Rgb(l) => (
                vec![(l.bytes_per_pixel, (1, 1))],
                l.rgb_offsets.iter().map(|&o| (0, 0, o)).collect(),
            ),
            PixelFormat::Gray => (vec![(1, (1, 1))], vec![(0, 0, 0)]),
            PixelFormat::Yuv420 { u_plane, v_plane } => (
                vec![(1, (1, 1)), (1, (2, 2))],
                vec![(0, 0, 0), (1, u_plane, 0), (1, v_plane, 0)],
            ),
            PixelFormat::SemiPlanar420 { v_first } => (
                vec![(1, (1, 1)), (2, (2, 2))],
                vec![
                    (0, 0, 0),
                    (1, 1, usize::from(v_first)),
                    (1, 1, usize::from(!v_first)),
                ],
            ),
            PixelFormat::Packed422 { y, u, v } => (
                vec![(2, (1, 1)), (4, (2, 1))],
                vec![(0, 0, y), (1, 0, u), (1, 0, v)],
            ),
        }
    }

    /// Bytes of one row's pixels and the number of rows of each plane of a `width` x `height`
    /// frame.
    fn planes(self, width: usize, height: usize) -> Vec<(usize, usize)> {
        let (half_w, half_h) = (width.div_ceil(2), height.div_ceil(2));
        match self {
            PixelFormat::Rgb(l) => vec![(width * l.bytes_per_pixel, height)],
            PixelFormat::Gray => vec![(width, height)],
            PixelFormat::Yuv420 { .. } => {
                vec![(width, height), (half_w, half_h), (half_w, half_h)]
            }
            PixelFormat::SemiPlanar420 { .. } => vec![(width, height), (2 * half_w, half_h)],
            PixelFormat::Packed422 { .. } => vec![(4 * half_w, height)],
        }
    }
}

/// A sampling grid: bytes between samples, and the horizontal and vertical subsampling.
type GridSpec = (usize, (usize, usize));

/// How 8-bit YUV becomes RGB: the matrix's Kr and Kb, and whether Y and chroma span 0..255
/// (full range) or 16..235 and 16..240 (limited).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    pub kr: f64,
    pub kb: f64,
    pub full_range: bool,
}

impl YuvMatrix {
    pub const fn bt601(full_range: bool) -> Self {
        YuvMatrix {
            kr: 0.299,
            kb: 0.114,
            full_range,
        }
    }
    pub const fn bt709(full_range: bool) -> Self {
        YuvMatrix {
            kr: 0.2126,
            kb: 0.0722,
            full_range,
        }
    }
    pub const fn bt2020(full_range: bool) -> Self {
        YuvMatrix {
            kr: 0.2627,
            kb: 0.0593,
            full_range,
        }
    }
    pub const fn smpte240m(full_range: bool) -> Self {
        YuvMatrix {
            kr: 0.212,
            kb: 0.087,
            full_range,
        }
    }
}

impl Default for YuvMatrix {
    /// BT.601, limited range: what most SD cameras send.
    fn default() -> Self {
        YuvMatrix::bt601(false)
    }
}

/// A frame as the caps describe it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameFormat {
    pub width: usize,
    pub height: usize,
    pub pixels: PixelFormat,
    /// Only used for YUV formats.
    pub matrix: YuvMatrix,
}

impl FrameFormat {
    /// A packed RGB frame.
    pub fn rgb(width: usize, height: usize, layout: PixelLayout) -> Self {
        FrameFormat {
            width,
            height,
            pixels: PixelFormat::Rgb(layout),
            matrix: YuvMatrix::default(),
        }
    }
}

/// What the model takes: its input size, normalisation and channel order, and how a frame is
/// fitted into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub width: usize,
    pub height: usize,
    pub normalization: Normalization,
    pub color_order: ColorOrder,
    pub resize: ResizeMode,
    /// With [`ResizeMode::CenterCrop`]: the part of the largest centred rectangle (of the input's
    /// aspect) that is used, 0 < f <= 1.
    pub crop_fraction: f64,
}

/// torchvision's evaluation crop: resize to 256, crop 224.
pub const DEFAULT_CROP_FRACTION: f64 = 0.875;

impl InputSpec {
    /// A `width` x `height` input, ImageNet-normalised RGB, the whole frame stretched.
    pub fn new(width: usize, height: usize) -> Self {
        InputSpec {
            width,
            height,
            normalization: Normalization::default(),
            color_order: ColorOrder::default(),
            resize: ResizeMode::default(),
            crop_fraction: DEFAULT_CROP_FRACTION,
        }
    }
}

/// What is wrong with a frame handed to [`Preprocessor::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is zero.
    Empty,
    /// The frame has fewer planes than its format needs.
    MissingPlane { plane: usize },
    /// A plane's stride is smaller than one row of its pixels.
    StrideTooSmall {
        plane: usize,
        stride: usize,
        row_bytes: usize,
    },
    /// A plane holds fewer bytes than rows × stride says.
    TooShort {
        plane: usize,
        needed: usize,
        got: usize,
    },
    /// The output slice is not 3 × out_width × out_height floats.
    OutputSize { needed: usize, got: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Empty => write!(f, "frame has zero width or height"),
            FrameError::MissingPlane { plane } => write!(f, "plane {plane} is missing"),
            FrameError::StrideTooSmall {
                plane,
                stride,
                row_bytes,
            } => {
                write!(
                    f,
                    "plane {plane}: stride {stride} is smaller than a row of {row_bytes} bytes"
                )
            }
            FrameError::TooShort { plane, needed, got } => {
                write!(
                    f,
                    "plane {plane} needs {needed} bytes but the buffer holds {got}"
                )
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
/// `interpolate(mode="bilinear", align_corners=False)`), over the source span `start` ..
/// `start + len` of an axis of `size` samples.
#[derive(Debug, Clone, PartialEq, Default)]
struct Axis {
    lo: Vec<usize>,
    hi: Vec<usize>,
    frac: Vec<f32>,
}

impl Axis {
    /// Refills the axis in place (its memory is reused).
    fn fill(&mut self, start: f64, len: f64, size: usize, count: usize) {
        let scale = len / count as f64;
        self.lo.clear();
        self.hi.clear();
        self.frac.clear();
        let last = size.saturating_sub(1);
        for i in 0..count {
            let pos = (start + (i as f64 + 0.5) * scale - 0.5).clamp(0.0, last as f64);
            let lo = (pos.floor() as usize).min(last);
            let hi = (lo + 1).min(last);
            let frac = if lo == last {
                0.0
            } else {
                (pos - lo as f64) as f32
            };
            self.lo.push(lo);
            self.hi.push(hi);
            self.frac.push(frac);
        }
    }
}

/// Where one kind of sample is read for every output point: the byte offsets in a row of the
/// two columns each output column blends and the second's weight, and the rows each output row
/// blends.
#[derive(Debug, Clone, PartialEq, Default)]
struct Grid {
    x0: Vec<usize>,
    x1: Vec<usize>,
    /// The columns as sample indices; `fx` is `cols.frac`.
    cols: Axis,
    rows: Axis,
}

/// One sampled channel (R, G or B of packed RGB; Y, U or V): its grid, plane and the byte
/// offset of its first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Channel {
    grid: usize,
    plane: usize,
    offset: usize,
}

/// The output rectangle the frame is drawn into (all of it except with letterbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
}

/// Which source rectangle (in pixels, fractional) goes into which output rectangle.
fn fit(width: usize, height: usize, spec: &InputSpec) -> ((f64, f64, f64, f64), Rect) {
    let (w, h) = (width as f64, height as f64);
    let (ow, oh) = (spec.width as f64, spec.height as f64);
    let whole = Rect {
        x: 0,
        y: 0,
        width: spec.width,
        height: spec.height,
    };
    match spec.resize {
        ResizeMode::Stretch => ((0.0, 0.0, w, h), whole),
        ResizeMode::CenterCrop => {
            // The largest centred rectangle of the input's aspect, times the fraction.
            let fraction = if spec.crop_fraction > 0.0 && spec.crop_fraction <= 1.0 {
                spec.crop_fraction
            } else {
                1.0
            };
            let scale = (w / ow).min(h / oh) * fraction;
            let (cw, ch) = (ow * scale, oh * scale);
            (((w - cw) / 2.0, (h - ch) / 2.0, cw, ch), whole)
        }
        ResizeMode::Letterbox => {
            let scale = (ow / w).min(oh / h);
            let dw = ((w * scale).round() as usize).clamp(1, spec.width.max(1));
            let dh = ((h * scale).round() as usize).clamp(1, spec.height.max(1));
            let rect = Rect {
                x: spec.width.saturating_sub(dw) / 2,
                y: spec.height.saturating_sub(dh) / 2,
                width: dw,
                height: dh,
            };
            ((0.0, 0.0, w, h), rect)
        }
    }
}

/// YUV → RGB in 0..255 for one matrix and range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct YuvToRgb {
    y_offset: f32,
    y_scale: f32,
    c_scale: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl YuvToRgb {
    fn new(m: YuvMatrix) -> Self {
        let kg = 1.0 - m.kr - m.kb;
        let (y_offset, y_scale, c_scale) = if m.full_range {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        YuvToRgb {
            y_offset,
            y_scale: y_scale as f32,
            c_scale: c_scale as f32,
            rv: (2.0 * (1.0 - m.kr)) as f32,
            gu: (2.0 * m.kb * (1.0 - m.kb) / kg) as f32,
            gv: (2.0 * m.kr * (1.0 - m.kr) / kg) as f32,
            bu: (2.0 * (1.0 - m.kb)) as f32,
        }
    }

    #[inline(always)]
    fn rgb(&self, [y, u, v]: [f32; 3]) -> [f32; 3] {
        let y = (y - self.y_offset) * self.y_scale;
        let u = (u - 128.0) * self.c_scale;
        let v = (v - 128.0) * self.c_scale;
        [
            (y + self.rv * v).clamp(0.0, 255.0),
            (y - self.gu * u - self.gv * v).clamp(0.0, 255.0),
            (y + self.bu * u).clamp(0.0, 255.0),
        ]
    }
}

/// The four bilinear weights of a point between columns x0, x1 (`fx`) and rows 0, 1 (`fy`).
#[inline(always)]
fn weights(fx: f32, fy: f32) -> [f32; 4] {
    [
        (1.0 - fx) * (1.0 - fy),
        fx * (1.0 - fy),
        (1.0 - fx) * fy,
        fx * fy,
    ]
}

/// Bilinear blend of the bytes at `x0 + off` and `x1 + off` of two rows.
#[inline(always)]
fn blend(rows: (&[u8], &[u8]), x0: usize, x1: usize, off: usize, w: [f32; 4]) -> f32 {
    rows.0[x0 + off] as f32 * w[0]
        + rows.0[x1 + off] as f32 * w[1]
        + rows.1[x0 + off] as f32 * w[2]
        + rows.1[x1 + off] as f32 * w[3]
}

/// Converts frames of one format into the model's input. Built once per caps (it precomputes
/// the sampling tables), then [`Preprocessor::run`] is called for every frame and writes into a
/// caller-owned buffer, so no allocation happens per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    format: FrameFormat,
    spec: InputSpec,
    out_width: usize,
    out_height: usize,
    /// The output plane of R, G and B (the model's channel order).
    planes: [usize; 3],
    /// value' = value * scale[p] + bias[p] turns a 0..255 value into output plane p's input.
    scale: [f32; 3],
    bias: [f32; 3],
    /// Where the frame goes in the output; the rest is the mean colour (0 after normalising).
    rect: Rect,
    grid_specs: Vec<GridSpec>,
    grids: Vec<Grid>,
    channels: Vec<Channel>,
    yuv: YuvToRgb,
    /// Packed RGB at the output's size, whole: a plain copy, no blending.
    copy: bool,
}

impl Preprocessor {
    pub fn new(format: FrameFormat, spec: &InputSpec) -> Self {
        let n = &spec.normalization;
        let mut scale = [0.0; 3];
        let mut bias = [0.0; 3];
        for p in 0..3 {
            scale[p] = (n.pixel_scale / n.std[p]) as f32;
            bias[p] = (-n.mean[p] / n.std[p]) as f32;
        }
        let planes = match spec.color_order {
            ColorOrder::Rgb => [0, 1, 2],
            ColorOrder::Bgr => [2, 1, 0],
        };
        let (grid_specs, channels) = format.pixels.sampling();
        let channels = channels
            .into_iter()
            .map(|(grid, plane, offset)| Channel {
                grid,
                plane,
                offset,
            })
            .collect();
        let mut p = Preprocessor {
            format,
            spec: *spec,
            out_width: spec.width,
            out_height: spec.height,
            planes,
            scale,
            bias,
            rect: Rect {
                x: 0,
                y: 0,
                width: 0,
                height: 0,
            },
            grid_specs,
            grids: Vec::new(),
            channels,
            yuv: YuvToRgb::new(format.matrix),
            copy: false,
        };
        p.set_region(None);
        p
    }

    /// From now on samples only `region` (x, y, width, height in pixels; the part inside the
    /// frame), fitted into the input as `resize` says; None: the whole frame. Reuses the tables'
    /// memory: no allocation once they have grown to the input's size.
    pub fn set_region(&mut self, region: Option<(u32, u32, u32, u32)>) {
        let f = self.format;
        let (x, y, w, h) = match region {
            None => (0, 0, f.width, f.height),
            Some((x, y, w, h)) => {
                let (x, y) = ((x as usize).min(f.width), (y as usize).min(f.height));
                (
                    x,
                    y,
                    (w as usize).min(f.width - x),
                    (h as usize).min(f.height - y),
                )
            }
        };
        let (src, rect) = fit(w, h, &self.spec);
        let src = (src.0 + x as f64, src.1 + y as f64, src.2, src.3);
        self.rect = rect;
        if w == 0 || h == 0 || rect.width == 0 || rect.height == 0 {
            self.grids.clear();
            self.rect.width = 0;
            self.copy = false;
            return;
        }
        self.grids.resize_with(self.grid_specs.len(), Grid::default);
        for (grid, &(step, (sx, sy))) in self.grids.iter_mut().zip(&self.grid_specs) {
            let (sx, sy) = (sx as f64, sy as f64);
            grid.cols.fill(
                src.0 / sx,
                src.2 / sx,
                (f.width as f64 / sx).ceil() as usize,
                rect.width,
            );
            grid.rows.fill(
                src.1 / sy,
                src.3 / sy,
                (f.height as f64 / sy).ceil() as usize,
                rect.height,
            );
            grid.x0.clear();
            grid.x0.extend(grid.cols.lo.iter().map(|&c| c * step));
            grid.x1.clear();
            grid.x1.extend(grid.cols.hi.iter().map(|&c| c * step));
        }
        // The whole frame into the whole output, pixel for pixel.
        let whole = (0.0, 0.0, f.width as f64, f.height as f64);
        self.copy = matches!(f.pixels, PixelFormat::Rgb(_))
            && (f.width, f.height) == (self.out_width, self.out_height)
            && src == whole
            && (rect.width, rect.height) == (self.out_width, self.out_height);
    }

    /// Number of floats the output buffer must hold: 3 × out_height × out_width.
    pub fn output_len(&self) -> usize {
        3 * self.out_width * self.out_height
    }

    /// Whether frames are resampled (not copied pixel for pixel).
    pub fn resizes(&self) -> bool {
        !self.copy
    }

    /// Checks the frame's planes against the format.
    fn check(&self, planes: &[&[u8]], strides: &[usize], out: &[f32]) -> Result<(), FrameError> {
        let f = &self.format;
        if f.width == 0 || f.height == 0 || self.out_width == 0 || self.out_height == 0 {
            return Err(FrameError::Empty);
        }
        for (plane, (row_bytes, rows)) in f.pixels.planes(f.width, f.height).into_iter().enumerate()
        {
            let (Some(data), Some(&stride)) = (planes.get(plane), strides.get(plane)) else {
                return Err(FrameError::MissingPlane { plane });
            };
            if stride < row_bytes {
                return Err(FrameError::StrideTooSmall {
                    plane,
                    stride,
                    row_bytes,
                });
            }
            // The last row needs only its pixels, not the padding after them.
            let needed = (rows - 1) * stride + row_bytes;
            if data.len() < needed {
                return Err(FrameError::TooShort {
                    plane,
                    needed,
                    got: data.len(),
                });
            }
        }
        if out.len() != self.output_len() {
            return Err(FrameError::OutputSize {
                needed: self.output_len(),
                got: out.len(),
            });
        }
        Ok(())
    }

    /// Writes the model's NCHW input (batch 1, planes in the model's channel order) for the
    /// frame whose planes are `planes` (first row at offset 0, rows `strides[i]` bytes apart)
    /// into `out`.
    pub fn run(
        &self,
        planes: &[&[u8]],
        strides: &[usize],
        out: &mut [f32],
    ) -> Result<(), FrameError> {
        self.check(planes, strides, out)?;
        if self.rect.width != self.out_width || self.rect.height != self.out_height {
            out.fill(0.0); // letterbox bars: the mean colour
        }
        if self.grids.is_empty() {
            return Ok(()); // an empty region: all mean colour
        }
        let plane_len = self.out_width * self.out_height;
        let (p0, rest) = out.split_at_mut(plane_len);
        let (p1, p2) = rest.split_at_mut(plane_len);
        let mut by_plane = [Some(p0), Some(p1), Some(p2)];
        let [r, g, b] = self.planes.map(|p| by_plane[p].take().unwrap_or_default());
        let targets = Targets {
            r,
            g,
            b,
            scale: self.planes.map(|p| self.scale[p]),
            bias: self.planes.map(|p| self.bias[p]),
        };
        match self.format.pixels {
            PixelFormat::Rgb(layout) if self.copy => {
                self.copy_rgb(planes[0], strides[0], layout, targets)
            }
            PixelFormat::Rgb(_) => self.sample(planes, strides, targets, None, |v| v),
            PixelFormat::Gray => self.sample(planes, strides, targets, None, |[y, _, _]| [y, y, y]),
            _ => {
                let yuv = self.yuv;
                self.sample(planes, strides, targets, Some(1), move |v| yuv.rgb(v))
            }
        }
        Ok(())
    }

    /// Packed RGB at the output's size.
    fn copy_rgb(&self, data: &[u8], stride: usize, layout: PixelLayout, t: Targets<'_>) {
        // Pixel sizes known at compile time let the loop be unrolled and vectorised.
        match layout.bytes_per_pixel {
            3 => self.copy_pixels::<3>(data, stride, layout, t),
            _ => self.copy_pixels::<4>(data, stride, layout, t),
        }
    }

    fn copy_pixels<const BPP: usize>(
        &self,
        data: &[u8],
        stride: usize,
        layout: PixelLayout,
        t: Targets<'_>,
    ) {
        let w = self.out_width;
        let [ro, go, bo] = layout.rgb_offsets;
        let ([rs, gs, bs], [rb, gb, bb]) = (t.scale, t.bias);
        for y in 0..self.out_height {
            let row = &data[y * stride..y * stride + w * BPP];
            let o = y * w;
            let pixels = row
                .chunks_exact(BPP)
                .zip(&mut t.r[o..o + w])
                .zip(&mut t.g[o..o + w])
                .zip(&mut t.b[o..o + w]);
            for (((px, r), g), b) in pixels {
                *r = px[ro] as f32 * rs + rb;
                *g = px[go] as f32 * gs + gb;
                *b = px[bo] as f32 * bs + bb;
            }
        }
    }

    /// Bilinear sampling at every output point of the frame's rectangle: the channels on the
    /// first grid (R G B, or Y), and with `chroma` U and V on that grid; `convert` turns the
    /// three samples into R, G and B in 0..255 (gray has one channel: the others read it again).
    fn sample(
        &self,
        planes: &[&[u8]],
        strides: &[usize],
        t: Targets<'_>,
        chroma: Option<usize>,
        convert: impl Fn([f32; 3]) -> [f32; 3],
    ) {
        let ch: [Channel; 3] =
            std::array::from_fn(|k| self.channels.get(k).copied().unwrap_or(self.channels[0]));
        let main = &self.grids[0];
        let ([rs, gs, bs], [rb, gb, bb]) = (t.scale, t.bias);
        let rect = self.rect;
        let rows = |c: Channel, j: usize| {
            let grid = &self.grids[c.grid];
            let (data, stride) = (planes[c.plane], strides[c.plane]);
            (
                &data[grid.rows.lo[j] * stride..],
                &data[grid.rows.hi[j] * stride..],
            )
        };
        for j in 0..rect.height {
            let fy = main.rows.frac[j];
            let rows0 = rows(ch[0], j);
            let (rows1, rows2) = (rows(ch[1], j), rows(ch[2], j));
            let o = (rect.y + j) * self.out_width + rect.x;
            let (r, g, b) = (
                &mut t.r[o..o + rect.width],
                &mut t.g[o..o + rect.width],
                &mut t.b[o..o + rect.width],
            );
            let columns = main.x0.iter().zip(&main.x1).zip(&main.cols.frac);
            match chroma.map(|c| &self.grids[c]) {
                // One grid: packed RGB, gray.
                None => {
                    for (i, ((&x0, &x1), &fx)) in columns.enumerate() {
                        let w = weights(fx, fy);
                        let [vr, vg, vb] = convert([
                            blend(rows0, x0, x1, ch[0].offset, w),
                            blend(rows1, x0, x1, ch[1].offset, w),
                            blend(rows2, x0, x1, ch[2].offset, w),
                        ]);
                        r[i] = vr * rs + rb;
                        g[i] = vg * gs + gb;
                        b[i] = vb * bs + bb;
                    }
                }
                // Luma on the first grid, chroma on its own.
                Some(cg) => {
                    let cfy = cg.rows.frac[j];
                    let chroma_columns = cg.x0.iter().zip(&cg.x1).zip(&cg.cols.frac);
                    for (i, (((&x0, &x1), &fx), ((&c0, &c1), &cfx))) in
                        columns.zip(chroma_columns).enumerate()
                    {
                        let (w, cw) = (weights(fx, fy), weights(cfx, cfy));
                        let [vr, vg, vb] = convert([
                            blend(rows0, x0, x1, ch[0].offset, w),
                            blend(rows1, c0, c1, ch[1].offset, cw),
                            blend(rows2, c0, c1, ch[2].offset, cw),
                        ]);
                        r[i] = vr * rs + rb;
                        g[i] = vg * gs + gb;
                        b[i] = vb * bs + bb;
                    }
                }
            }
        }
    }
}

/// The output planes of R, G and B with their scale and bias.
struct Targets<'a> {
    r: &'a mut [f32],
    g: &'a mut [f32],
    b: &'a mut [f32],
    scale: [f32; 3],
    bias: [f32; 3],
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let red = |x: usize, y: usize| out[y * 6 + x] * IMAGENET_STD[0] + IMAGENET_MEAN[0];
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
}
