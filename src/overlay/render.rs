//! Text for `torchoverlay`: what to write for a result, where the frame's label goes, and
//! rendering it once with Pango/Cairo into a premultiplied ARGB image (or filling one with a
//! colour, for a region's outline) that becomes a `GstVideoOverlayRectangle` (gstreamer-video
//! blends it into the frame or sends it downstream as meta). Where a region's outline and caption
//! go is `super::regions`.

use gst::glib;
use torchcore::classify::Classification;

/// Where the text box goes.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchOverlayPosition")]
pub enum Position {
    #[default]
    #[enum_value(name = "Top left", nick = "top-left")]
    TopLeft = 0,
    #[enum_value(name = "Top right", nick = "top-right")]
    TopRight = 1,
    #[enum_value(name = "Bottom left", nick = "bottom-left")]
    BottomLeft = 2,
    #[enum_value(name = "Bottom right", nick = "bottom-right")]
    BottomRight = 3,
}

impl Position {
    /// Top-left corner of a `w` × `h` box inside a `fw` × `fh` frame, `margin` from its edges
    /// (clamped into the frame).
    pub fn place(self, fw: usize, fh: usize, w: usize, h: usize, margin: usize) -> (usize, usize) {
        let right = fw.saturating_sub(w + margin);
        let bottom = fh.saturating_sub(h + margin);
        let left = margin.min(fw.saturating_sub(w));
        let top = margin.min(fh.saturating_sub(h));
        match self {
            Position::TopLeft => (left, top),
            Position::TopRight => (right, top),
            Position::BottomLeft => (left, bottom),
            Position::BottomRight => (right, bottom),
        }
    }
}

/// Text height in pixels for a font description without a size: 1/16 of the frame height.
pub fn default_text_px(frame_height: usize) -> i32 {
    i32::try_from(frame_height / 16).unwrap_or(i32::MAX).max(8)
}

/// Distance of the text box from the frame's edges: 1/40 of the frame height.
pub fn margin(frame_height: usize) -> usize {
    (frame_height / 40).max(2)
}

/// The text for a result: `label 97%`, then with `show_top_k` one line per further class; `?`
/// when the top-1 confidence is below `min_confidence`.
pub fn caption(c: &Classification, show_top_k: bool, min_confidence: f64) -> String {
    let top1 = c.top1();
    let mut text = label_caption(&top1.label, top1.confidence, min_confidence);
    if show_top_k && top1.confidence >= min_confidence {
        for p in c.top_k().iter().skip(1) {
            text.push('\n');
            text.push_str(&label_caption(&p.label, p.confidence, 0.0));
        }
    }
    text
}

/// One label and its confidence (`cat 87%`), or `?` below `min_confidence`.
pub fn label_caption(label: &str, confidence: f64, min_confidence: f64) -> String {
    if confidence < min_confidence {
        return "?".into();
    }
    format!("{label} {:.0}%", confidence * 100.0)
}

/// A rendered text box or a filled rectangle: premultiplied ARGB32 pixels as Cairo lays them out (native-endian
/// 0xAARRGGBB words), which is also the layout of gstreamer-video's overlay rectangles
/// (`GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB`: BGRA in memory on little-endian, ARGB on
/// big-endian).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u32>,
}

/// Renders `text` in `font` with colour `color` (0xAARRGGBB) over a box of colour `background`
/// (alpha 0: no box). A font without a size gets `default_px` pixels.
pub fn render(
    text: &str,
    font: &str,
    default_px: i32,
    color: u32,
    background: u32,
) -> Result<Image, String> {
    let fontmap = pangocairo::FontMap::new();
    let context = pango::prelude::FontMapExt::create_context(&fontmap);
    let layout = pango::Layout::new(&context);
    let mut desc = pango::FontDescription::from_string(font);
    if desc.size() == 0 {
        desc.set_absolute_size(f64::from(default_px.max(6) * pango::SCALE));
    }
    layout.set_font_description(Some(&desc));
    layout.set_text(text);
    let (_, logical) = layout.pixel_extents();
    let pad = (desc.size() / pango::SCALE / 4).max(2);
    let width = logical.width() + 2 * pad;
    let height = logical.height() + 2 * pad;
    let mut surface = cairo::ImageSurface::create(cairo::Format::ARgb32, width, height)
        .map_err(|e| format!("cairo surface {width}x{height}: {e}"))?;
    {
        let cr = cairo::Context::new(&surface).map_err(|e| e.to_string())?;
        let rgba = |c: u32| {
            (
                f64::from((c >> 16) & 0xff) / 255.0,
                f64::from((c >> 8) & 0xff) / 255.0,
                f64::from(c & 0xff) / 255.0,
                f64::from(c >> 24) / 255.0,
            )
        };
        let (r, g, b, a) = rgba(background);
        cr.set_source_rgba(r, g, b, a);
        cr.paint().map_err(|e| e.to_string())?;
        let (r, g, b, a) = rgba(color);
        cr.set_source_rgba(r, g, b, a);
        cr.move_to(f64::from(pad - logical.x()), f64::from(pad - logical.y()));
        pangocairo::functions::show_layout(&cr, &layout);
    }
    surface.flush();
    let stride = surface.stride() as usize;
    let data = surface.data().map_err(|e| e.to_string())?;
    let (w, h) = (width as usize, height as usize);
    let mut pixels = Vec::with_capacity(w * h);
    for row in data.chunks(stride).take(h) {
        pixels.extend(
            row[..w * 4]
                .chunks_exact(4)
                .map(|p| u32::from_ne_bytes([p[0], p[1], p[2], p[3]])),
        );
    }
    Ok(Image {
        width: w,
        height: h,
        pixels,
    })
}

impl Image {
    /// A `width` × `height` image of colour `color` (0xAARRGGBB, premultiplied here).
    pub fn solid(width: usize, height: usize, color: u32) -> Image {
        let a = color >> 24;
        let premultiply = |shift: u32| ((((color >> shift) & 0xff) * a + 127) / 255) << shift;
        let pixel = (a << 24) | premultiply(16) | premultiply(8) | premultiply(0);
        Image {
            width,
            height,
            pixels: vec![pixel; width * height],
        }
    }

    /// The image as an overlay rectangle whose top-left corner goes at (`x`, `y`) of the frame,
    /// unscaled. The library clips it to the frame when it blends.
    pub fn rectangle(&self, x: i64, y: i64) -> Result<gst_video::VideoOverlayRectangle, String> {
        let too_big = |what: &str| format!("text box {what} out of range");
        let (w, h) = (
            u32::try_from(self.width).map_err(|_| too_big("width"))?,
            u32::try_from(self.height).map_err(|_| too_big("height"))?,
        );
        let (x, y) = (
            i32::try_from(x).map_err(|_| too_big("x"))?,
            i32::try_from(y).map_err(|_| too_big("y"))?,
        );
        let bytes: Vec<u8> = self.pixels.iter().flat_map(|p| p.to_ne_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        #[cfg(target_endian = "little")]
        let format = gst_video::VideoFormat::Bgra;
        #[cfg(target_endian = "big")]
        let format = gst_video::VideoFormat::Argb;
        gst_video::VideoMeta::add(
            buffer.make_mut(),
            gst_video::VideoFrameFlags::empty(),
            format,
            w,
            h,
        )
        .map_err(|e| format!("video meta for the {w}x{h} text box: {e}"))?;
        Ok(gst_video::VideoOverlayRectangle::new_raw(
            &buffer,
            x,
            y,
            w,
            h,
            gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use torchcore::classify::Prediction;
    use torchcore::frame::FrameInfo;

    fn result(confidence: f64) -> Classification {
        Classification::new(
            vec![
                Prediction {
                    class_id: 967,
                    label: Arc::from("espresso"),
                    confidence,
                },
                Prediction {
                    class_id: 968,
                    label: Arc::from("cup"),
                    confidence: 0.02,
                },
            ],
            FrameInfo::default(),
            std::time::Duration::ZERO,
        )
        .unwrap()
    }

    #[test]
    fn captions() {
        let text = |c: &Classification, top_k, min| caption(c, top_k, min);
        assert_eq!(text(&result(0.974), false, 0.0), "espresso 97%");
        assert_eq!(text(&result(0.974), true, 0.0), "espresso 97%\ncup 2%");
        assert_eq!(text(&result(0.3), true, 0.5), "?");
    }

    #[test]
    fn places_boxes_in_corners_and_clamps() {
        assert_eq!(Position::TopLeft.place(640, 480, 100, 20, 8), (8, 8));
        assert_eq!(
            Position::BottomRight.place(640, 480, 100, 20, 8),
            (532, 452)
        );
        assert_eq!(Position::TopRight.place(64, 48, 100, 20, 8), (0, 8));
        assert_eq!(Position::BottomLeft.place(640, 10, 100, 20, 8), (8, 0));
    }

    #[test]
    fn text_size_and_margin_follow_the_frame_height() {
        assert_eq!(default_text_px(480), 30);
        assert_eq!(default_text_px(64), 8);
        assert_eq!(margin(480), 12);
        assert_eq!(margin(40), 2);
    }

    #[test]
    fn renders_text_over_an_opaque_box() {
        let img = render("espresso 97%", "Sans Bold", 24, 0xffffffff, 0xff000000).unwrap();
        assert!(
            img.width > 60 && img.height >= 24,
            "{}x{}",
            img.width,
            img.height
        );
        assert_eq!(img.pixels.len(), img.width * img.height);
        // Opaque box: every pixel opaque; the white text makes some of them white.
        assert!(img.pixels.iter().all(|p| p >> 24 == 0xff));
        assert!(img.pixels.contains(&0xffffffff));
        assert!(img.pixels.contains(&0xff000000));
    }

    #[test]
    fn transparent_background_leaves_the_box_transparent_between_letters() {
        let img = render("cat", "Sans 20", 20, 0xffff0000, 0).unwrap();
        let red = img
            .pixels
            .iter()
            .filter(|&&p| p >> 24 > 200 && (p >> 16) & 0xff > 200 && (p >> 8) & 0xff < 50)
            .count();
        let transparent = img.pixels.iter().filter(|&&p| p == 0).count();
        assert!(
            red > 10 && transparent > red,
            "red {red}, transparent {transparent}"
        );
        // Premultiplied: no channel exceeds its pixel's alpha.
        assert!(img.pixels.iter().all(|&p| {
            let a = p >> 24;
            (p >> 16) & 0xff <= a && (p >> 8) & 0xff <= a && p & 0xff <= a
        }));
    }

    #[test]
    fn a_solid_image_is_premultiplied() {
        let img = Image::solid(3, 2, 0xffff8000);
        assert_eq!((img.width, img.height), (3, 2));
        assert_eq!(img.pixels, vec![0xffff8000; 6]);
        let img = Image::solid(1, 1, 0x80ff8000);
        assert_eq!(img.pixels, vec![0x80804000]);
        assert_eq!(Image::solid(2, 1, 0x00ffffff).pixels, vec![0, 0]);
    }

    #[test]
    fn the_image_becomes_an_unscaled_premultiplied_rectangle_at_its_place() {
        gst::init().unwrap();
        let img = render("orange 93%", "Sans Bold", 16, 0xffffffff, 0xa0000000).unwrap();
        let rect = img.rectangle(7, 5).unwrap();
        assert_eq!(
            rect.render_rectangle(),
            (7, 5, img.width as u32, img.height as u32)
        );
        assert_eq!(
            rect.flags(),
            gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA
        );
        // The library hands the same pixels back, premultiplied ARGB in native-endian words.
        let pixels =
            rect.pixels_unscaled_argb(gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA);
        let map = pixels.map_readable().unwrap();
        let words: Vec<u32> = map
            .chunks_exact(4)
            .map(|p| u32::from_ne_bytes([p[0], p[1], p[2], p[3]]))
            .collect();
        assert_eq!(words, img.pixels);
    }
}
