//! Text for `torchoverlay`: what to write for a result, rendering it once with Pango/Cairo into
//! a premultiplied ARGB image, and blending that image onto a packed RGB frame in place.

use crate::postprocess::Classification;
use crate::preprocess::PixelLayout;
use gst::glib;

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

/// The text for a result: `label 97%`, then with `show_top_k` one line per further class; `?`
/// when the top-1 confidence is below `min_confidence`.
pub fn caption(c: &Classification, show_top_k: bool, min_confidence: f64) -> String {
    if c.confidence() < min_confidence {
        return "?".into();
    }
    let line = |label: &str, confidence: f64| format!("{label} {:.0}%", confidence * 100.0);
    let mut text = line(c.label(), c.confidence());
    if show_top_k {
        for p in c.top_k().iter().skip(1) {
            text.push('\n');
            text.push_str(&line(&p.label, p.confidence));
        }
    }
    text
}

/// A rendered text box: premultiplied ARGB32 pixels as Cairo lays them out (native-endian
/// 0xAARRGGBB words).
#[derive(Debug, Clone, PartialEq)]
pub struct TextImage {
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
) -> Result<TextImage, String> {
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
    Ok(TextImage {
        width: w,
        height: h,
        pixels,
    })
}

impl TextImage {
    /// Blends the image onto a packed RGB frame (`stride` bytes a row) with its top-left at
    /// (`x`, `y`), clipped to the frame. Alpha/padding bytes of the frame are left alone.
    #[allow(clippy::too_many_arguments)]
    pub fn blend(
        &self,
        frame: &mut [u8],
        stride: usize,
        frame_width: usize,
        frame_height: usize,
        layout: PixelLayout,
        x: usize,
        y: usize,
    ) {
        let bpp = layout.bytes_per_pixel;
        let [ro, go, bo] = layout.rgb_offsets;
        let w = self.width.min(frame_width.saturating_sub(x));
        let h = self.height.min(frame_height.saturating_sub(y));
        for row in 0..h {
            let start = (y + row) * stride + x * bpp;
            let Some(dst) = frame.get_mut(start..start + w * bpp) else {
                return;
            };
            let src = &self.pixels[row * self.width..row * self.width + w];
            for (px, &argb) in dst.chunks_exact_mut(bpp).zip(src) {
                let a = argb >> 24;
                if a == 0 {
                    continue;
                }
                let inv = 255 - a;
                let over = |d: u8, s: u32| (s + (u32::from(d) * inv + 127) / 255).min(255) as u8;
                px[ro] = over(px[ro], (argb >> 16) & 0xff);
                px[go] = over(px[go], (argb >> 8) & 0xff);
                px[bo] = over(px[bo], argb & 0xff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postprocess::{FrameInfo, Prediction};
    use std::sync::Arc;

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
            gst::ClockTime::ZERO,
        )
        .unwrap()
    }

    #[test]
    fn captions() {
        assert_eq!(caption(&result(0.974), false, 0.0), "espresso 97%");
        assert_eq!(caption(&result(0.974), true, 0.0), "espresso 97%\ncup 2%");
        assert_eq!(caption(&result(0.3), true, 0.5), "?");
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
    fn renders_text_and_blends_only_inside_the_box() {
        let img = render("espresso 97%", "Sans Bold", 24, 0xffffffff, 0xff000000).unwrap();
        assert!(
            img.width > 60 && img.height >= 24,
            "{}x{}",
            img.width,
            img.height
        );
        // Opaque box: every pixel opaque; the white text makes some of them white.
        assert!(img.pixels.iter().all(|p| p >> 24 == 0xff));
        assert!(img.pixels.contains(&0xffffffff));
        assert!(img.pixels.contains(&0xff000000));

        // A coloured frame (B, G, R, x = 0x20, 0x80, 0xc0, 0x55): the opaque black box with white
        // text turns every pixel it covers grey (B = G = R), so each covered pixel shows.
        let (fw, fh, stride) = (200, 100, 200 * 4 + 8);
        let colour = [0x20u8, 0x80, 0xc0, 0x55];
        let mut frame: Vec<u8> = colour.iter().copied().cycle().take(stride * fh).collect();
        let (x, y) = Position::BottomRight.place(fw, fh, img.width, img.height, 4);
        img.blend(&mut frame, stride, fw, fh, PixelLayout::BGRX, x, y);
        for row in 0..fh {
            for col in 0..fw {
                let px = &frame[row * stride + col * 4..row * stride + col * 4 + 4];
                let inside =
                    (x..x + img.width).contains(&col) && (y..y + img.height).contains(&row);
                if !inside {
                    assert_eq!(px, colour, "pixel {col},{row} outside the box changed");
                } else {
                    assert_eq!(px[3], 0x55, "the x byte is left alone");
                    assert!(
                        px[0] == px[1] && px[1] == px[2],
                        "pixel {col},{row} not covered"
                    );
                }
            }
        }
        // Row padding is never touched.
        assert!(
            frame
                .chunks(stride)
                .all(|r| r[fw * 4..] == [0x20, 0x80, 0xc0, 0x55, 0x20, 0x80, 0xc0, 0x55])
        );
    }

    #[test]
    fn transparent_background_leaves_the_frame_between_letters() {
        let img = render("cat", "Sans 20", 20, 0xffff0000, 0).unwrap();
        let mut frame = vec![10u8; img.width * img.height * 3];
        img.blend(
            &mut frame,
            img.width * 3,
            img.width,
            img.height,
            PixelLayout::RGB,
            0,
            0,
        );
        let red = frame.chunks(3).filter(|p| p[0] > 200 && p[1] < 50).count();
        let untouched = frame.chunks(3).filter(|p| *p == [10, 10, 10]).count();
        assert!(
            red > 10 && untouched > red,
            "red {red}, untouched {untouched}"
        );
    }
}
