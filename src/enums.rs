//! The core's option enums as GLib enums, for the elements' properties: the same values, with
//! the names `gst-inspect-1.0` shows. Converted to and from the core's at the property boundary;
//! a unit test checks every nick against the core's name.

use gst::glib;

/// `From` both ways between a GLib enum here and the core's enum of the same values.
macro_rules! mirror {
    ($($ours:ident <=> $theirs:path { $($variant:ident),+ $(,)? })*) => {$(
        impl From<$ours> for $theirs {
            fn from(v: $ours) -> Self {
                use $theirs as T;
                match v {
                    $($ours::$variant => T::$variant),+
                }
            }
        }

        impl From<$theirs> for $ours {
            fn from(v: $theirs) -> Self {
                use $theirs as T;
                match v {
                    $(T::$variant => $ours::$variant),+
                }
            }
        }
    )*};
}

/// libtorch's quantized engine (`engine`). Process-global: the last element to load a model
/// sets it for every model in the process.
#[derive(Debug, Default, Eq, PartialEq, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchEngine")]
pub enum Engine {
    #[default]
    #[enum_value(
        name = "Auto: the engine the model was calibrated for (recorded by tools/export_model.py), \
                else the platform's fastest (x86 on x86-64, qnnpack on ARM)",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "QNNPACK (ARM, mobile; slow on x86-64)", nick = "qnnpack")]
    Qnnpack = 1,
    #[enum_value(name = "FBGEMM (x86-64)", nick = "fbgemm")]
    Fbgemm = 2,
    #[enum_value(
        name = "x86: FBGEMM and oneDNN kernels, libtorch's x86-64 default",
        nick = "x86"
    )]
    X86 = 3,
}

/// What `torchclassify` classifies (`inference-region`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchInferenceRegion")]
pub enum InferenceRegion {
    #[default]
    #[enum_value(name = "Full frame: the whole frame", nick = "full-frame")]
    FullFrame = 0,
    #[enum_value(
        name = "ROI list: every region of interest (GstVideoRegionOfInterestMeta) on the frame",
        nick = "roi-list"
    )]
    RoiList = 1,
}

/// The channel order of the model's input planes (`color-order`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
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
        name = "Letterbox: the whole frame, aspect kept, padded (torchdetect: pad-color; \
                torchclassify: the mean colour)",
        nick = "letterbox"
    )]
    Letterbox = 2,
}

/// What turns the model's outputs into confidences (`output`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchOutput")]
pub enum Activation {
    #[default]
    #[enum_value(
        name = "Softmax: the outputs are logits of exclusive classes",
        nick = "softmax"
    )]
    Softmax = 0,
    #[enum_value(
        name = "Sigmoid: multi-label, each output a class's own logit",
        nick = "sigmoid"
    )]
    Sigmoid = 1,
    #[enum_value(name = "None: the outputs are already probabilities", nick = "none")]
    None = 2,
}

/// How a detector lays out its outputs (`output-format`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchOutputFormat")]
pub enum OutputFormat {
    #[default]
    #[enum_value(
        name = "Auto: told from the output shapes where they leave no doubt",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "YOLOv8/YOLO11: one tensor [1, 4+classes, candidates] (cx, cy, w, h, class \
                scores), ultralytics' TorchScript export",
        nick = "yolov8"
    )]
    Yolov8 = 1,
    #[enum_value(
        name = "YOLOv5: one tensor [1, candidates, 5+classes] (cx, cy, w, h, objectness, class \
                scores)",
        nick = "yolov5"
    )]
    Yolov5 = 2,
    #[enum_value(
        name = "Boxes: three tensors, boxes [N, 4] x1 y1 x2 y2, scores [N], class ids [N], \
                already suppressed (a scripted torchvision detector in a wrapper doing its NMS in \
                plain torch ops)",
        nick = "boxes"
    )]
    Boxes = 3,
}

mirror! {
    Engine <=> torchcore::settings::Engine { Auto, Qnnpack, Fbgemm, X86 }
    InferenceRegion <=> torchcore::settings::InferenceRegion { FullFrame, RoiList }
    ColorOrder <=> torchcore::preprocess::ColorOrder { Rgb, Bgr }
    ResizeMode <=> torchcore::preprocess::ResizeMode { Stretch, CenterCrop, Letterbox }
    Activation <=> torchcore::classify::Activation { Softmax, Sigmoid, None }
    OutputFormat <=> torchcore::detect::OutputFormat { Auto, Yolov8, Yolov5, Boxes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glib::prelude::*;
    use glib::translate::IntoGlib;

    /// Every core value's GLib nick is the core's name, and back.
    fn same_names<G, C>(all: &[C], name: fn(C) -> &'static str)
    where
        G: From<C> + Into<C> + StaticType + IntoGlib<GlibType = i32> + Copy,
        C: Copy + PartialEq + std::fmt::Debug,
    {
        let class = glib::EnumClass::with_type(G::static_type()).unwrap();
        assert_eq!(class.values().len(), all.len());
        for &c in all {
            let g = G::from(c);
            let value = class.value(g.into_glib()).unwrap();
            assert_eq!(value.nick(), name(c));
            assert_eq!(g.into(), c);
        }
    }

    #[test]
    fn every_nick_is_the_cores_name() {
        use torchcore::{classify, preprocess, settings};
        same_names::<Engine, _>(settings::Engine::ALL, settings::Engine::name);
        same_names::<InferenceRegion, _>(
            settings::InferenceRegion::ALL,
            settings::InferenceRegion::name,
        );
        same_names::<ColorOrder, _>(preprocess::ColorOrder::ALL, preprocess::ColorOrder::name);
        same_names::<ResizeMode, _>(preprocess::ResizeMode::ALL, preprocess::ResizeMode::name);
        same_names::<Activation, _>(classify::Activation::ALL, classify::Activation::name);
        use torchcore::detect::OutputFormat as Format;
        same_names::<OutputFormat, _>(Format::ALL, Format::name);
    }
}
