//! Caps and formats: what the elements take, and GStreamer's video formats and colorimetry as
//! the core's pixel formats and YUV matrices.

use torchcore::frame::{PixelFormat, PixelLayout, YuvMatrix};

/// The formats the inference elements take: packed RGB, and YUV and gray converted at the sampled
/// points only.
pub(crate) const FORMATS: [gst_video::VideoFormat; 17] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
    gst_video::VideoFormat::Yuy2,
    gst_video::VideoFormat::Uyvy,
    gst_video::VideoFormat::Gray8,
];

/// The inference elements' sink and src templates: [`FORMATS`], any size and rate.
pub(crate) fn inference_pad_templates() -> Vec<gst::PadTemplate> {
    sink_src_templates(
        &gst_video::VideoCapsBuilder::new()
            .format_list(FORMATS)
            .build(),
    )
}

/// An always sink pad and an always src pad taking `caps`: the templates of each of the
/// plugin's (one in, one out) elements.
pub(crate) fn sink_src_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("sink", gst::PadDirection::Sink),
        ("src", gst::PadDirection::Src),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("valid static pad template")
    })
    .collect()
}

/// How `format`'s bytes hold its pixels (None: not one of [`FORMATS`]).
pub(crate) fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as F;
    Some(match format {
        F::Rgb => PixelFormat::Rgb(PixelLayout::RGB),
        F::Bgr => PixelFormat::Rgb(PixelLayout::BGR),
        F::Rgbx | F::Rgba => PixelFormat::Rgb(PixelLayout::RGBX),
        F::Bgrx | F::Bgra => PixelFormat::Rgb(PixelLayout::BGRX),
        F::Xrgb | F::Argb => PixelFormat::Rgb(PixelLayout::XRGB),
        F::Xbgr | F::Abgr => PixelFormat::Rgb(PixelLayout::XBGR),
        F::I420 => PixelFormat::I420,
        F::Yv12 => PixelFormat::YV12,
        F::Nv12 => PixelFormat::NV12,
        F::Nv21 => PixelFormat::NV21,
        F::Yuy2 => PixelFormat::YUY2,
        F::Uyvy => PixelFormat::UYVY,
        F::Gray8 => PixelFormat::Gray,
        _ => return None,
    })
}

/// The YUV matrix and range of `info`'s colorimetry (GStreamer fills in its defaults for the
/// frame size when the caps say none: BT.601 for SD, BT.709 for HD, limited range).
pub(crate) fn yuv_matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    use gst_video::VideoColorMatrix as M;
    let colorimetry = info.colorimetry();
    let full = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    match colorimetry.matrix() {
        M::Bt709 => YuvMatrix::bt709(full),
        M::Bt2020 => YuvMatrix::bt2020(full),
        M::Smpte240m => YuvMatrix::smpte240m(full),
        _ => YuvMatrix::bt601(full),
    }
}
