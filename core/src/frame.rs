//! A video frame as plain data: how its bytes hold its pixels ([`PixelFormat`], [`FrameFormat`]),
//! its mapped planes ([`Frame`]), which frame of the stream it is ([`FrameInfo`]) and the regions
//! of interest on it ([`Region`]). Everything the preprocessing reads, with no GStreamer type.

use std::time::Duration;

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
    pub(crate) fn sampling(self) -> (Vec<GridSpec>, Vec<(usize, usize, usize)>) {
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
    pub(crate) fn planes(self, width: usize, height: usize) -> Vec<(usize, usize)> {
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
pub(crate) type GridSpec = (usize, (usize, usize));

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

/// What is wrong with a frame handed to [`crate::preprocess::Preprocessor::run`].
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

/// A mapped frame: up to three planes, each with the bytes between the starts of two rows (the
/// first row at offset 0). Borrowed from whatever mapped it; nothing is copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frame<'a> {
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    count: usize,
}

impl<'a> Frame<'a> {
    /// The most planes a frame has (I420, YV12).
    pub const MAX_PLANES: usize = 3;

    /// Adds the next plane; false (and nothing added) once [`Frame::MAX_PLANES`] are there.
    pub fn push(&mut self, data: &'a [u8], stride: usize) -> bool {
        if self.count == Self::MAX_PLANES {
            return false;
        }
        self.planes[self.count] = data;
        self.strides[self.count] = stride;
        self.count += 1;
        true
    }

    pub fn planes(&self) -> &[&'a [u8]] {
        &self.planes[..self.count]
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.count]
    }
}

/// Which frame a result was computed on: its number since the element started (or since the last
/// flush), PTS and duration, and the PTS as stream time and running time of its segment. With
/// `inference-interval` > 1 or `async`, buffers carry the newest result, so this can be an
/// earlier frame than the buffer's own. Times are None when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameInfo {
    pub number: u64,
    pub timestamp: Option<Duration>,
    pub stream_time: Option<Duration>,
    pub running_time: Option<Duration>,
    pub duration: Option<Duration>,
}

/// A region of interest of a frame (from its `GstVideoRegionOfInterestMeta`), clipped to the
/// frame: what `inference-region=roi-list` classifies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Region {
    /// The ROI meta's id (a tracker's object id; detectors that set none leave 0).
    pub id: i32,
    /// Which of the buffer's ROI metas it is (their order on the buffer), [`Region::NO_ROI`]
    /// for a region read from a `GstAnalyticsODMtd` alone; not carried in messages (0 when
    /// parsed from one).
    pub index: usize,
    /// The ROI meta's type (what the detector called it: "car", "face", ...).
    pub roi_type: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// The id of the buffer's `GstAnalyticsODMtd` of this box (the region's own, or the one of
    /// its ROI meta's box), which its result's `GstAnalyticsClsMtd` is related from; not carried
    /// in messages.
    pub od: Option<u32>,
}

impl Region {
    /// [`Region::index`] of a region that is no ROI meta (a `GstAnalyticsODMtd`'s).
    pub const NO_ROI: usize = usize::MAX;

    /// The part of the rectangle (x, y, width, height) inside a `frame_width` x `frame_height`
    /// frame, as a region; None when nothing of it is inside.
    pub fn clipped(
        id: i32,
        roi_type: &str,
        (x, y, width, height): (u32, u32, u32, u32),
        (frame_width, frame_height): (u32, u32),
    ) -> Option<Region> {
        let right = x.saturating_add(width).min(frame_width);
        let bottom = y.saturating_add(height).min(frame_height);
        (x < right && y < bottom).then(|| Region {
            id,
            index: 0,
            roi_type: roi_type.to_string(),
            x,
            y,
            width: right - x,
            height: bottom - y,
            od: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_clipped_to_the_frame() {
        let frame = (640, 480);
        let r = Region::clipped(7, "car", (600, 400, 100, 100), frame).unwrap();
        assert_eq!((r.id, r.roi_type.as_str()), (7, "car"));
        assert_eq!((r.x, r.y, r.width, r.height), (600, 400, 40, 80));
        let r = Region::clipped(1, "", (10, 20, 30, 40), frame).unwrap();
        assert_eq!((r.x, r.y, r.width, r.height), (10, 20, 30, 40));
        // Wholly outside, zero-size, overflowing: none, or clipped.
        assert_eq!(Region::clipped(1, "", (640, 0, 10, 10), frame), None);
        assert_eq!(Region::clipped(1, "", (0, 0, 0, 10), frame), None);
        assert_eq!(Region::clipped(1, "", (5, 5, 10, 0), frame), None);
        let r = Region::clipped(1, "", (1, 1, u32::MAX, u32::MAX), frame).unwrap();
        assert_eq!((r.width, r.height), (639, 479));
    }

    #[test]
    fn a_frame_holds_at_most_three_planes() {
        let bytes = [0u8; 4];
        let mut f = Frame::default();
        for i in 0..3 {
            assert!(f.push(&bytes[..i + 1], i + 1));
        }
        assert!(!f.push(&bytes, 4));
        assert_eq!(f.strides(), &[1, 2, 3]);
        assert_eq!(f.planes()[2].len(), 3);
    }
}
