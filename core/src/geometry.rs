//! Boxes in pixels and the affine map between frame and model input, shared by detection
//! and tracking.

/// An axis-aligned rectangle: top-left corner `(x, y)` and its size, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Rect {
    pub const fn new(x: f32, y: f32, width: f32, height: f32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// The rectangle with corners `(x1, y1)` (top-left) and `(x2, y2)` (bottom-right).
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Rect::new(x1, y1, x2 - x1, y2 - y1)
    }

    /// The rectangle of size `width` × `height` centred on `(cx, cy)`.
    pub fn from_center(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Rect::new(cx - width / 2.0, cy - height / 2.0, width, height)
    }

    pub fn right(&self) -> f32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.height
    }

    pub fn center(&self) -> (f32, f32) {
        (self.x + self.width / 2.0, self.y + self.height / 2.0)
    }

    /// The area; 0 for a rectangle with a negative width or height.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union with `other`: 0 when they do not overlap or either is empty.
    pub fn iou(&self, other: &Rect) -> f32 {
        iou_corners(
            [self.x, self.y, self.right(), self.bottom()],
            [other.x, other.y, other.right(), other.bottom()],
        )
    }

    /// The whole-pixel rectangle `(x, y, width, height)` covering this one (rounded outward),
    /// inside a frame of the given size and at least 1×1 when the frame is not empty.
    pub fn pixel_rect(&self, frame_width: u32, frame_height: u32) -> (u32, u32, u32, u32) {
        let (x, w) = pixel_span(self.x, self.right(), frame_width);
        let (y, h) = pixel_span(self.y, self.bottom(), frame_height);
        (x, y, w, h)
    }
}

fn pixel_span(lo: f32, hi: f32, size: u32) -> (u32, u32) {
    let limit = size as f32;
    let a = lo.floor().clamp(0.0, limit) as u32;
    let b = hi.ceil().clamp(0.0, limit) as u32;
    if b > a {
        return (a, b - a);
    }
    let a = a.min(size.saturating_sub(1));
    (a, (a + 1).min(size) - a)
}

/// The affine map per axis that made the model input from the frame:
/// `input = frame * scale + offset`, so `frame = (input - offset) / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    pub scale_x: f32,
    pub scale_y: f32,
    pub offset_x: f32,
    pub offset_y: f32,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping::identity()
    }
}

/// Width and height as `f64`, at least 1.
fn dims(w: u32, h: u32) -> (f64, f64) {
    (f64::from(w.max(1)), f64::from(h.max(1)))
}

impl Mapping {
    const fn new(scale_x: f64, scale_y: f64, offset_x: f64, offset_y: f64) -> Self {
        Mapping {
            scale_x: scale_x as f32,
            scale_y: scale_y as f32,
            offset_x: offset_x as f32,
            offset_y: offset_y as f32,
        }
    }

    pub const fn identity() -> Self {
        Mapping::new(1.0, 1.0, 0.0, 0.0)
    }

    /// The whole frame, aspect kept, drawn `round(size * s)` pixels large (s = the smaller of
    /// the two input/frame ratios; at least 1 pixel, at most the input) and centred with the
    /// integer padding `(input - drawn) / 2`.
    pub fn letterbox(
        frame_width: u32,
        frame_height: u32,
        input_width: u32,
        input_height: u32,
    ) -> Self {
        let (fw, fh) = dims(frame_width, frame_height);
        let (iw, ih) = (input_width.max(1), input_height.max(1));
        let s = (f64::from(iw) / fw).min(f64::from(ih) / fh);
        let dw = ((fw * s).round() as u32).clamp(1, iw);
        let dh = ((fh * s).round() as u32).clamp(1, ih);
        let (x0, y0) = ((iw - dw) / 2, (ih - dh) / 2);
        Mapping::new(f64::from(dw) / fw, f64::from(dh) / fh, x0.into(), y0.into())
    }

    /// The whole frame resized to the input, each axis by its own ratio.
    pub fn stretch(
        frame_width: u32,
        frame_height: u32,
        input_width: u32,
        input_height: u32,
    ) -> Self {
        let (fw, fh) = dims(frame_width, frame_height);
        let (iw, ih) = dims(input_width, input_height);
        Mapping::new(iw / fw, ih / fh, 0.0, 0.0)
    }

    /// The largest centred rectangle of the input's aspect, times `crop_fraction` (taken as 1
    /// outside (0, 1]), resized to the input.
    pub fn center_crop(
        frame_width: u32,
        frame_height: u32,
        input_width: u32,
        input_height: u32,
        crop_fraction: f64,
    ) -> Self {
        let (fw, fh) = dims(frame_width, frame_height);
        let (iw, ih) = dims(input_width, input_height);
        let fraction = if crop_fraction > 0.0 && crop_fraction <= 1.0 {
            crop_fraction
        } else {
            1.0
        };
        // Frame pixels per input pixel, and the crop's top-left corner.
        let s = (fw / iw).min(fh / ih) * fraction;
        let (x0, y0) = ((fw - iw * s) / 2.0, (fh - ih * s) / 2.0);
        Mapping::new(1.0 / s, 1.0 / s, -x0 / s, -y0 / s)
    }

    /// The frame point of an input point.
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        let fx = (x - self.offset_x) / self.scale_x;
        (fx, (y - self.offset_y) / self.scale_y)
    }

    /// The input point of a frame point.
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        let ix = x * self.scale_x + self.offset_x;
        (ix, y * self.scale_y + self.offset_y)
    }
}

/// Intersection over union of two boxes given as `[x1, y1, x2, y2]`; 0 when they do not overlap
/// or when either has no area (never NaN for finite input).
#[inline]
pub fn iou_corners(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    if inter <= 0.0 {
        return 0.0;
    }
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    inter / (area_a + area_b - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = Rect::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Rect::new(20.0, 0.0, 10.0, 10.0)), 0.0);
        // Touching edges share no area.
        assert_eq!(a.iou(&Rect::new(10.0, 0.0, 10.0, 10.0)), 0.0);
        // Overlap 5x10 = 50, union 150.
        assert_eq!(a.iou(&Rect::new(5.0, 0.0, 10.0, 10.0)), 50.0 / 150.0);
        assert_eq!(a.iou(&Rect::new(0.0, 0.0, 0.0, 10.0)), 0.0);
    }

    #[test]
    fn constructors_and_accessors_agree() {
        let r = Rect::from_corners(1.0, 2.0, 5.0, 8.0);
        assert_eq!(r, Rect::new(1.0, 2.0, 4.0, 6.0));
        assert_eq!((r.right(), r.bottom()), (5.0, 8.0));
        assert_eq!(r.center(), (3.0, 5.0));
        assert_eq!(Rect::from_center(3.0, 5.0, 4.0, 6.0), r);
        assert_eq!(r.area(), 24.0);
        assert_eq!(Rect::new(0.0, 0.0, -1.0, 5.0).area(), 0.0);
    }

    #[test]
    fn pixel_rect_rounds_outward_inside_the_frame() {
        assert_eq!(
            Rect::new(10.4, 0.0, 20.2, 479.5).pixel_rect(640, 480),
            (10, 0, 21, 480)
        );
        assert_eq!(
            Rect::new(-3.0, 470.2, 700.0, 20.0).pixel_rect(640, 480),
            (0, 470, 640, 10)
        );
        assert_eq!(
            Rect::new(639.5, 479.9, 0.5, 0.1).pixel_rect(640, 480),
            (639, 479, 1, 1)
        );
        assert_eq!(
            Rect::new(639.9, 5.0, 0.0, 1.0).pixel_rect(640, 480),
            (639, 5, 1, 1)
        );
    }

    fn parts(m: Mapping) -> (f32, f32, f32, f32) {
        (m.scale_x, m.scale_y, m.offset_x, m.offset_y)
    }

    #[test]
    fn letterbox_rounds_the_drawn_size_and_centres_it() {
        assert_eq!(
            parts(Mapping::letterbox(640, 480, 640, 640)),
            (1.0, 1.0, 0.0, 80.0)
        );
        let m = Mapping::letterbox(640, 480, 640, 640);
        assert_eq!(m.to_frame(100.0, 180.0), (100.0, 100.0));
        assert_eq!(m.to_frame(200.0, 280.0), (200.0, 200.0));
        // 1920x1080: s = 1/3, drawn 640x360, 140 rows of padding above.
        let m = Mapping::letterbox(1920, 1080, 640, 640);
        assert_eq!(parts(m), (1.0 / 3.0, 1.0 / 3.0, 0.0, 140.0));
        assert_eq!(m.to_frame(100.0, 240.0), (300.0, 300.0));
        // Tall: 480x640 drawn 480 wide, 80 columns of padding on the left.
        let m = Mapping::letterbox(480, 640, 640, 640);
        assert_eq!(
            (parts(m), m.to_frame(180.0, 100.0)),
            ((1.0, 1.0, 80.0, 0.0), (100.0, 100.0))
        );
        // 641x480: drawn 640x479 (479.25 rounded), padding (640 - 479) / 2 = 80.
        let m = Mapping::letterbox(641, 480, 640, 640);
        assert_eq!(parts(m), (640.0 / 641.0, 479.0 / 480.0, 0.0, 80.0));
        assert_eq!(m.to_input(641.0, 0.0), (640.0, 80.0));
    }

    #[test]
    fn stretch_and_center_crop_and_identity() {
        let m = Mapping::stretch(640, 480, 320, 320);
        assert_eq!(parts(m), (0.5, 320.0 / 480.0, 0.0, 0.0));
        assert_eq!(m.to_frame(160.0, 160.0), (320.0, 240.0));
        let near =
            |(a, b): (f32, f32), (x, y): (f32, f32)| (a - x).abs() < 1e-3 && (b - y).abs() < 1e-3;
        // 640x480 into 224x224 at 0.875: the crop is 420x420 from (110, 30).
        let m = Mapping::center_crop(640, 480, 224, 224, 0.875);
        assert!(near(m.to_frame(0.0, 0.0), (110.0, 30.0)), "{m:?}");
        assert!(near(m.to_frame(224.0, 224.0), (530.0, 450.0)), "{m:?}");
        assert!(near(m.to_input(110.0, 30.0), (0.0, 0.0)), "{m:?}");
        // A fraction outside (0, 1] takes the whole centred square; a wide input a wide crop.
        let m = Mapping::center_crop(640, 480, 224, 224, 0.0);
        assert!(near(m.to_frame(0.0, 224.0), (80.0, 480.0)), "{m:?}");
        let m = Mapping::center_crop(400, 400, 200, 100, 1.0);
        assert!(
            near(m.to_frame(0.0, 0.0), (0.0, 100.0))
                && near(m.to_frame(200.0, 100.0), (400.0, 300.0))
        );
        assert_eq!(Mapping::identity().to_frame(3.0, 4.0), (3.0, 4.0));
        assert_eq!(Mapping::default(), Mapping::identity());
    }
}
