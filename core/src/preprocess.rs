//! Frame → model input: one pass from a mapped video frame (packed RGB in any channel order,
//! planar or packed YUV, gray; any size and stride) to the model's normalised float NCHW input,
//! resizing on the way.
//!
//! Everything here is plain data and functions: the frame comes as planes and strides
//! ([`crate::frame`]).

use crate::frame::{FrameError, FrameFormat, GridSpec, PixelFormat, PixelLayout, YuvMatrix};
use crate::geometry::Mapping;

/// ImageNet mean and standard deviation per RGB channel, as in torchvision's `Normalize`.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// The channel order of the model's input planes (`color-order`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorOrder {
    /// Planes red, green, blue (torchvision).
    #[default]
    Rgb,
    /// Planes blue, green, red (OpenCV, Caffe).
    Bgr,
}

/// How a frame becomes the model's square input (`resize`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// The whole frame, squashed to the input size.
    #[default]
    Stretch,
    /// The largest centred square times `crop-fraction` (torchvision's evaluation: 0.875,
    /// resize 256 + crop 224).
    CenterCrop,
    /// The whole frame, aspect kept, padded with [`InputSpec::pad`] (None: the mean colour).
    Letterbox,
}

crate::names! {
    ColorOrder { Rgb = "rgb", Bgr = "bgr" }
    ResizeMode { Stretch = "stretch", CenterCrop = "center-crop", Letterbox = "letterbox" }
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
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            pixel_scale: 1.0 / 255.0,
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
    /// With [`ResizeMode::Letterbox`]: the bars' colour (R, G, B in 0..255); None: the mean
    /// colour (0 after normalising).
    pub pad: Option<[u8; 3]>,
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
            pad: None,
        }
    }
}

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
    /// Where the frame goes in the output; the rest is the pad colour.
    rect: Rect,
    /// The part of the frame sampled (x, y, width, height in frame pixels).
    src: (f64, f64, f64, f64),
    grid_specs: Vec<GridSpec>,
    grids: Vec<Grid>,
    channels: Vec<Channel>,
    /// Bytes of a row's pixels and rows of each of the frame's planes (what `check` needs).
    frame_planes: Vec<(usize, usize)>,
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
            src: (0.0, 0.0, 0.0, 0.0),
            grid_specs,
            grids: Vec::new(),
            channels,
            frame_planes: format.pixels.planes(format.width, format.height),
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
        self.src = src;
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

    /// How a point of the frame maps into the model's input (`input = frame × scale + offset`),
    /// for the part sampled now: what turns a detector's boxes back into frame pixels.
    pub fn mapping(&self) -> Mapping {
        let (sx, sy, sw, sh) = self.src;
        let scale = |out: usize, len: f64| if len > 0.0 { out as f64 / len } else { 1.0 };
        let (scale_x, scale_y) = (scale(self.rect.width, sw), scale(self.rect.height, sh));
        Mapping {
            scale_x: scale_x as f32,
            scale_y: scale_y as f32,
            offset_x: (self.rect.x as f64 - sx * scale_x) as f32,
            offset_y: (self.rect.y as f64 - sy * scale_y) as f32,
        }
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
        for (plane, &(row_bytes, rows)) in self.frame_planes.iter().enumerate() {
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
            // Letterbox bars: the pad colour, or the mean colour (0 after normalising).
            match self.spec.pad {
                None => out.fill(0.0),
                Some(pad) => {
                    let plane_len = self.out_width * self.out_height;
                    for (c, &value) in pad.iter().enumerate() {
                        let p = self.planes[c];
                        let v = value as f32 * self.scale[p] + self.bias[p];
                        out[p * plane_len..(p + 1) * plane_len].fill(v);
                    }
                }
            }
        }
        if self.grids.is_empty() {
            return Ok(()); // an empty region: all pad (or mean) colour
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
mod tests;
