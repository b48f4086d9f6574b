//! Buffer metadata carrying a [`Classification`]:
//!
//! - [`ClassificationMeta`], a Rust-registered `GstMeta` (API type `GstTorchClassificationMetaAPI`)
//!   with a typed API for Rust applications;
//! - a full-frame `GstVideoRegionOfInterestMeta` of roi type `classification` whose param
//!   structure `torchclassify` holds the same fields as the bus message (see [`crate::message`]),
//!   readable from C and Python on GStreamer 1.22 without our Rust types;
//! - with the `analytics` feature (GStreamer 1.24+), the same results as `GstAnalyticsClsMtd`s
//!   (regions: related from their `GstAnalyticsODMtd`s) in the buffer's
//!   `GstAnalyticsRelationMeta` (see [`crate::analytics`]).

use crate::message;
use gst::glib;
use gst::prelude::*;
use std::fmt;
use torchcore::classify::{Classification, Prediction};
use torchcore::frame::Region;

/// The ROI type of the full-frame region-of-interest meta.
pub const ROI_TYPE: &str = "classification";

/// Whether `meta` is a full-frame result's ROI meta (roi type [`ROI_TYPE`] with a
/// `torchclassify` param), not a region to classify or track.
pub fn is_full_frame(meta: &gst_video::VideoRegionOfInterestMeta) -> bool {
    meta.roi_type() == ROI_TYPE && meta.param(message::STRUCTURE_NAME).is_some()
}

/// Attaches both metas to `buffer`: our typed meta (which takes `c`) and the full-frame ROI meta
/// of a `width` × `height` frame (and with the `analytics` feature, a `GstAnalyticsClsMtd`).
pub fn attach(buffer: &mut gst::BufferRef, c: Classification, width: u32, height: u32) {
    let param = message::to_structure(&c);
    #[cfg(feature = "analytics")]
    crate::analytics::attach(buffer, &c);
    ClassificationMeta::add(buffer, c);
    let mut roi =
        gst_video::VideoRegionOfInterestMeta::add(buffer, ROI_TYPE, (0, 0, width, height));
    roi.add_param(param);
}

/// The buffer's full-frame result: our [`ClassificationMeta`], or else the full-frame ROI meta's
/// `torchclassify` param (attached by any element that uses the same layout, or an application).
pub fn result(buffer: &gst::BufferRef) -> Option<Classification> {
    match ClassificationMeta::from_buffer(buffer) {
        Some(m) => Some(m.classification().clone()),
        None => from_roi_meta(buffer),
    }
}

/// Reads the result from a buffer's full-frame ROI meta param, as a C or Python application
/// would (works for results attached by any element that uses the same param layout).
pub fn from_roi_meta(buffer: &gst::BufferRef) -> Option<Classification> {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == ROI_TYPE)
        .find_map(|m| {
            m.param(message::STRUCTURE_NAME)
                .and_then(|s| message::from_structure(s).ok())
        })
}

/// `inference-region=roi-list`: adds each region's result as a `torchclassify` param (the
/// fields of [`message::region_structure`]) to the buffer's ROI meta it was taken from (by
/// position, [`Region::index`]); with the `analytics` feature, each one's `GstAnalyticsClsMtd`
/// related from its `GstAnalyticsODMtd` ([`crate::analytics::attach_regions`]).
pub fn attach_regions(buffer: &mut gst::BufferRef, results: &[(Region, Classification)]) {
    #[cfg(feature = "analytics")]
    crate::analytics::attach_regions(buffer, results);
    let mut results = results.iter().peekable();
    for (index, mut meta) in buffer
        .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
        .enumerate()
    {
        // Results are in meta order.
        while results.next_if(|(r, _)| r.index < index).is_some() {}
        if let Some((region, c)) = results.next_if(|(r, _)| r.index == index) {
            meta.add_param(message::region_structure(region, c));
        }
    }
}

/// `inference-region=roi-list` on a frame the model did not run on: gives the newest results
/// to the buffer's ROI metas of the same id (a tracker's ids), where that id names one region
/// both among those results and on the buffer (detectors that set no id leave them all 0: with
/// several regions, nothing is carried; a negative id is a detector's box number on its frame,
/// never carried) and the meta has no result yet. With the `analytics`
/// feature, their `GstAnalyticsClsMtd`s too ([`crate::analytics::carry_regions`]: `frame` is the
/// frame's width and height).
pub fn carry_regions(
    buffer: &mut gst::BufferRef,
    latest: &[(Region, Classification)],
    frame: (u32, u32),
) {
    if latest.is_empty() {
        return;
    }
    let mut given = Vec::new();
    let ids: Vec<i32> = buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| m.id())
        .collect();
    let once = |id: i32| ids.iter().filter(|&&i| i == id).count() == 1;
    for (index, mut meta) in buffer
        .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
        .enumerate()
    {
        if meta.param(message::STRUCTURE_NAME).is_some() {
            continue;
        }
        let id = meta.id();
        if id < 0 {
            continue;
        }
        let mut same = latest
            .iter()
            .filter(|(r, _)| r.id == id && r.index != Region::NO_ROI);
        if let (Some((region, c)), None) = (same.next(), same.next())
            && once(id)
        {
            meta.add_param(message::region_structure(region, c));
            given.push((index, c.clone()));
        }
    }
    #[cfg(feature = "analytics")]
    crate::analytics::carry_regions(buffer, frame, latest, &given);
    #[cfg(not(feature = "analytics"))]
    let _ = (frame, given);
}

/// The regions' results on a buffer (`inference-region=roi-list`), read from the ROI metas'
/// `torchclassify` params, as a C or Python application would.
pub fn regions(buffer: &gst::BufferRef) -> Vec<(Region, Classification)> {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter_map(|m| {
            m.param(message::STRUCTURE_NAME)
                .and_then(|s| message::region_from_structure(s).ok())
        })
        .collect()
}

/// Typed classification meta on a buffer.
#[repr(transparent)]
pub struct ClassificationMeta(imp::ClassificationMeta);

// SAFETY: the meta only holds a `Classification`, which is Send + Sync.
unsafe impl Send for ClassificationMeta {}
unsafe impl Sync for ClassificationMeta {}

impl ClassificationMeta {
    /// Adds the meta holding `classification` to the buffer.
    pub fn add(
        buffer: &mut gst::BufferRef,
        classification: Classification,
    ) -> gst::MetaRefMut<'_, Self, gst::meta::Standalone> {
        // SAFETY: the buffer is writable (`&mut BufferRef`); `meta_init` moves the
        // classification out of `params` (hence ManuallyDrop: it is not dropped here too);
        // gst_buffer_add_meta returns the new meta of our registered info, laid out as
        // `imp::ClassificationMeta`, which lives as long as the buffer.
        unsafe {
            let mut params = std::mem::ManuallyDrop::new(imp::Params { classification });
            let meta = gst::ffi::gst_buffer_add_meta(
                buffer.as_mut_ptr(),
                imp::meta_get_info(),
                &mut *params as *mut imp::Params as glib::ffi::gpointer,
            ) as *mut imp::ClassificationMeta;
            Self::from_mut_ptr(buffer, meta)
        }
    }

    /// The meta of the buffer's frame, if the buffer carries one.
    pub fn from_buffer(buffer: &gst::BufferRef) -> Option<gst::MetaRef<'_, ClassificationMeta>> {
        buffer.meta::<ClassificationMeta>()
    }

    pub fn classification(&self) -> &Classification {
        &self.0.classification
    }
    pub fn label(&self) -> &str {
        self.0.classification.label()
    }
    pub fn class_id(&self) -> u32 {
        self.0.classification.class_id()
    }
    pub fn confidence(&self) -> f64 {
        self.0.classification.confidence()
    }
    pub fn top_k(&self) -> &[Prediction] {
        self.0.classification.top_k()
    }
    /// PTS of the frame the result was computed on (with `inference-interval` > 1 or `async`,
    /// possibly an earlier frame than this buffer's).
    pub fn timestamp(&self) -> Option<gst::ClockTime> {
        crate::message::clock_time(self.0.classification.frame.timestamp)
    }
    /// Number of the frame the result was computed on.
    pub fn frame_number(&self) -> u64 {
        self.0.classification.frame.number
    }
}

// SAFETY: `GstType` is the #[repr(C)] struct GStreamer allocates for our registered info, and
// `meta_api` returns the API type that info was registered with.
unsafe impl MetaAPI for ClassificationMeta {
    type GstType = imp::ClassificationMeta;

    fn meta_api() -> glib::Type {
        imp::meta_api_get_type()
    }
}

impl fmt::Debug for ClassificationMeta {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("ClassificationMeta")
            .field("classification", &self.0.classification)
            .finish()
    }
}

mod imp {
    use super::Classification;
    use glib::translate::*;
    use gst::glib;
    use std::{mem, ptr, sync::LazyLock};

    pub(super) struct Params {
        pub classification: Classification,
    }

    #[repr(C)]
    pub struct ClassificationMeta {
        parent: gst::ffi::GstMeta,
        pub(super) classification: Classification,
    }

    pub(super) fn meta_api_get_type() -> glib::Type {
        // SAFETY: a NUL-terminated static name and a NULL-terminated (empty) tag array.
        static TYPE: LazyLock<glib::Type> = LazyLock::new(|| unsafe {
            let t = from_glib(gst::ffi::gst_meta_api_type_register(
                c"GstTorchClassificationMetaAPI".as_ptr() as *const _,
                [ptr::null::<std::os::raw::c_char>()].as_ptr() as *mut *const _,
            ));
            assert_ne!(t, glib::Type::INVALID);
            t
        });
        *TYPE
    }

    unsafe extern "C" fn meta_init(
        meta: *mut gst::ffi::GstMeta,
        params: glib::ffi::gpointer,
        _buffer: *mut gst::ffi::GstBuffer,
    ) -> glib::ffi::gboolean {
        // SAFETY: GStreamer calls this once per new meta, `meta` pointing at size_of
        // ClassificationMeta uninitialised bytes after the GstMeta header, `params` at the
        // `Params` that `ClassificationMeta::add` passed (and will not drop): read once, moved in.
        unsafe {
            assert!(!params.is_null());
            let meta = &mut *(meta as *mut ClassificationMeta);
            let params = ptr::read(params as *const Params);
            ptr::write(&mut meta.classification, params.classification);
        }
        true.into_glib()
    }

    unsafe extern "C" fn meta_free(
        meta: *mut gst::ffi::GstMeta,
        _buffer: *mut gst::ffi::GstBuffer,
    ) {
        // SAFETY: called once when the meta goes, after `meta_init` initialised the field.
        unsafe {
            let meta = &mut *(meta as *mut ClassificationMeta);
            ptr::drop_in_place(&mut meta.classification);
        }
    }

    /// A full-frame classification stays true through copies and scaling: copy it along.
    unsafe extern "C" fn meta_transform(
        dest: *mut gst::ffi::GstBuffer,
        meta: *mut gst::ffi::GstMeta,
        _buffer: *mut gst::ffi::GstBuffer,
        _type_: glib::ffi::GQuark,
        _data: glib::ffi::gpointer,
    ) -> glib::ffi::gboolean {
        // SAFETY: `meta` is one of ours (initialised); GStreamer passes a writable `dest`.
        unsafe {
            let meta = &*(meta as *mut ClassificationMeta);
            super::ClassificationMeta::add(
                gst::BufferRef::from_mut_ptr(dest),
                meta.classification.clone(),
            );
        }
        true.into_glib()
    }

    pub(super) fn meta_get_info() -> *const gst::ffi::GstMetaInfo {
        struct MetaInfo(ptr::NonNull<gst::ffi::GstMetaInfo>);
        // SAFETY: the registered info is immutable and lives for the whole process.
        unsafe impl Send for MetaInfo {}
        unsafe impl Sync for MetaInfo {}

        // SAFETY: registers our API type with the size of our struct and functions matching
        // GStreamer's signatures; the name is a NUL-terminated static string.
        static META_INFO: LazyLock<MetaInfo> = LazyLock::new(|| unsafe {
            MetaInfo(
                ptr::NonNull::new(gst::ffi::gst_meta_register(
                    meta_api_get_type().into_glib(),
                    c"GstTorchClassificationMeta".as_ptr() as *const _,
                    mem::size_of::<ClassificationMeta>(),
                    Some(meta_init),
                    Some(meta_free),
                    Some(meta_transform),
                ) as *mut gst::ffi::GstMetaInfo)
                .expect("registering GstTorchClassificationMeta failed"),
            )
        });

        META_INFO.0.as_ptr()
    }
}
