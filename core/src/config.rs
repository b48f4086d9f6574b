//! Model config files: JSON beside a model (`my.pt` → `my.json`) or named by the element's
//! `model-config` property, saying how the model wants its input and output treated.
//!
//! ```json
//! {
//!     "labels": "imagenet_labels.txt",
//!     "input-size": 224,
//!     "mean": [0.485, 0.456, 0.406],
//!     "std": [0.229, 0.224, 0.225],
//!     "pixel-scale": 0.00392156862745098,
//!     "color-order": "rgb",
//!     "resize": "center-crop",
//!     "crop-fraction": 0.875,
//!     "output": "softmax",
//!     "threshold": 0.5
//! }
//! ```
//!
//! A detector's file may also say `output-format` (`auto`, `yolov8`, `yolov5`, `boxes`),
//! `iou-threshold` and `max-detections`; each element refuses the keys of the other kind
//! (`output` is a classifier's).
//!
//! Read by serde into typed fields: every key is optional, an unknown key is an error that lists
//! the known ones (a misspelt key is not silently ignored), and a value of the wrong type or out
//! of range is an error naming the file and the key. `labels` is a path (relative to the JSON
//! file's folder) or a list of label strings.

use crate::classify::Activation;
use crate::detect::OutputFormat;
use crate::labels::Labels;
use crate::preprocess::{ColorOrder, ResizeMode};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::path::{Path, PathBuf};

/// Where the labels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelsSource {
    /// A labels file (one label per line), already resolved against the JSON file's folder.
    File(PathBuf),
    /// The labels themselves, in class-id order (trimmed; checked by [`Labels::from_list`]).
    List(Vec<String>),
}

/// A checked model config file: `None` for each key it does not set.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelConfigFile {
    /// The JSON file itself.
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(default, deserialize_with = "labels")]
    pub labels: Option<LabelsSource>,
    #[serde(default, deserialize_with = "input_size")]
    pub input_size: Option<u32>,
    pub mean: Option<[f64; 3]>,
    pub std: Option<[f64; 3]>,
    pub pixel_scale: Option<f64>,
    pub color_order: Option<ColorOrder>,
    pub resize: Option<ResizeMode>,
    pub crop_fraction: Option<f64>,
    pub output: Option<Activation>,
    pub threshold: Option<f64>,
    /// Detectors: how the outputs are laid out, and non-maximum suppression.
    pub output_format: Option<OutputFormat>,
    pub iou_threshold: Option<f64>,
    pub max_detections: Option<u32>,
}

/// The keys a model config file may hold, in the order serde's error for an unknown key lists
/// them.
pub const KEYS: [&str; 13] = [
    "labels",
    "input-size",
    "mean",
    "std",
    "pixel-scale",
    "color-order",
    "resize",
    "crop-fraction",
    "output",
    "threshold",
    "output-format",
    "iou-threshold",
    "max-detections",
];

/// The smallest and largest `input-size`.
pub const INPUT_SIZE_RANGE: std::ops::RangeInclusive<u32> = 8..=4096;

/// The config file the element looks for by default: the model's path with extension `.json`.
pub fn beside(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// Reads and checks a config file (error text as [`parse`]'s; a missing or unreadable file:
/// `model config '…': cannot read: …`).
pub fn load(path: &Path) -> Result<ModelConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("model config '{}': cannot read: {e}", path.display()))?;
    parse(&text, path)
}

/// Checks the config file text `text`; `path` names it in errors and resolves a relative `labels`
/// path. Errors start with `model config '<path>': ` and name the key and what is wrong with it.
pub fn parse(text: &str, path: &Path) -> Result<ModelConfigFile, String> {
    let file_err = |what: String| format!("model config '{}': {what}", path.display());
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| file_err(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(file_err(format!(
            "expected a JSON object ({{\"key\": value, ...}}) at the top level, got {}",
            describe(&value)
        )));
    }
    let mut config: ModelConfigFile = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        file_err(format!(
            "key '{key}': {}",
            unknown_key_hint(&e.into_inner().to_string())
        ))
    })?;
    config.check().map_err(file_err)?;
    if let Some(LabelsSource::File(p)) = &mut config.labels
        && p.is_relative()
    {
        *p = path.parent().unwrap_or(Path::new("")).join(&*p);
    }
    config.path = path.to_path_buf();
    Ok(config)
}

/// serde's "unknown field `input_size`, expected one of …" with a hint when the key is a known
/// one spelt with underscores or capitals.
fn unknown_key_hint(message: &str) -> String {
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    else {
        return message.to_string();
    };
    let kebab = key.replace('_', "-").to_ascii_lowercase();
    if kebab != key && KEYS.contains(&kebab.as_str()) {
        format!("{message} (did you mean `{kebab}`?)")
    } else {
        message.to_string()
    }
}

impl ModelConfigFile {
    /// The range checks serde's types do not make; the error names the key.
    fn check(&self) -> Result<(), String> {
        let key = |name: &str, e: String| format!("key '{name}': {e}");
        if let Some(v) = &self.mean {
            check_mean(v).map_err(|e| key("mean", e))?;
        }
        if let Some(v) = &self.std {
            check_std(v).map_err(|e| key("std", e))?;
        }
        if let Some(v) = self.pixel_scale {
            check_pixel_scale(v).map_err(|e| key("pixel-scale", e))?;
        }
        if let Some(v) = self.crop_fraction {
            check_crop_fraction(v).map_err(|e| key("crop-fraction", e))?;
        }
        if let Some(v) = self.threshold {
            check_threshold(v).map_err(|e| key("threshold", e))?;
        }
        if let Some(v) = self.iou_threshold {
            check_threshold(v).map_err(|e| key("iou-threshold", e))?;
        }
        Ok(())
    }

    /// Whether the file sets `key` (one of [`KEYS`]).
    pub fn sets(&self, key: &str) -> bool {
        match key {
            "labels" => self.labels.is_some(),
            "input-size" => self.input_size.is_some(),
            "mean" => self.mean.is_some(),
            "std" => self.std.is_some(),
            "pixel-scale" => self.pixel_scale.is_some(),
            "color-order" => self.color_order.is_some(),
            "resize" => self.resize.is_some(),
            "crop-fraction" => self.crop_fraction.is_some(),
            "output" => self.output.is_some(),
            "threshold" => self.threshold.is_some(),
            "output-format" => self.output_format.is_some(),
            "iou-threshold" => self.iou_threshold.is_some(),
            "max-detections" => self.max_detections.is_some(),
            _ => false,
        }
    }
}

/// `input-size`: a whole number in [`INPUT_SIZE_RANGE`].
fn input_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let (min, max) = (INPUT_SIZE_RANGE.start(), INPUT_SIZE_RANGE.end());
    let expected = format!("a whole number from {min} to {max}");
    let Some(v) = Option::<u64>::deserialize(d).map_err(|e| {
        de::Error::custom(
            e.to_string()
                .replace("expected u64", &format!("expected {expected}")),
        )
    })?
    else {
        return Ok(None);
    };
    u32::try_from(v)
        .ok()
        .filter(|v| INPUT_SIZE_RANGE.contains(v))
        .map(Some)
        .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Unsigned(v), &expected.as_str()))
}

/// `labels`: a path, or a list of label strings under the rules of a labels file.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LabelsSource>, D::Error> {
    struct LabelsVisitor;
    impl<'de> Visitor<'de> for LabelsVisitor {
        type Value = Option<LabelsSource>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a labels file's path or a list of label strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.trim().is_empty() {
                return Err(E::invalid_value(de::Unexpected::Str(s), &self));
            }
            Ok(Some(LabelsSource::File(PathBuf::from(s))))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some(label) = seq.next_element::<String>()? {
                list.push(label);
            }
            // The labels' own rules (not empty, no blank label), as for a labels file.
            let checked = Labels::from_list(list).map_err(|e| match e {
                crate::labels::LabelsError::Empty => de::Error::custom("the list is empty"),
                e => de::Error::custom(e),
            })?;
            Ok(Some(LabelsSource::List(
                (0..checked.len())
                    .filter_map(|i| checked.get(i).map(|l| l.to_string()))
                    .collect(),
            )))
        }
    }
    d.deserialize_any(LabelsVisitor)
}

/// 3 finite numbers: a model config's `mean`, or the element's.
pub fn check_mean(values: &[f64]) -> Result<[f64; 3], String> {
    let v = three(values)?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "expected 3 finite numbers, entry {} is {}",
            i + 1,
            v[i]
        ));
    }
    Ok(v)
}

/// 3 finite non-zero numbers: a model config's `std`, or the element's.
pub fn check_std(values: &[f64]) -> Result<[f64; 3], String> {
    let v = three(values)?;
    if let Some(i) = v.iter().position(|x| !x.is_finite() || *x == 0.0) {
        return Err(format!(
            "expected 3 finite non-zero numbers (each divides a channel), entry {} is {}",
            i + 1,
            v[i]
        ));
    }
    Ok(v)
}

/// A finite number greater than 0: `pixel-scale`.
pub fn check_pixel_scale(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a finite number greater than 0, got {v}"))
    }
}

/// A number greater than 0 and at most 1: `crop-fraction`.
pub fn check_crop_fraction(v: f64) -> Result<f64, String> {
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "expected a number greater than 0 and at most 1, got {v}"
        ))
    }
}

/// A number from 0 to 1 (NaN is not one): `threshold`.
pub fn check_threshold(v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("expected a number from 0 to 1, got {v}"))
    }
}

/// What a JSON value is, for "expected …, got …".
fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", Value::String(s.clone())),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn three(values: &[f64]) -> Result<[f64; 3], String> {
    <[f64; 3]>::try_from(values).map_err(|_| format!("expected 3 numbers, got {}", values.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/models/my.json";

    fn ok(text: &str) -> ModelConfigFile {
        parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The error for `text`, checked to start with the file and to name `key`.
    fn err(text: &str, key: &str) -> String {
        let e = match parse(text, Path::new(FILE)) {
            Ok(c) => panic!("{text} was accepted: {c:?}"),
            Err(e) => e,
        };
        assert!(e.starts_with("model config '/models/my.json': "), "{e}");
        assert!(e.contains(&format!("key '{key}")), "{key} not named: {e}");
        e
    }

    #[test]
    fn every_key_accepted() {
        let c = ok(r#"{
            "labels": "labels.txt",
            "input-size": 299,
            "mean": [0.5, 0.25, -1],
            "std": [0.2, 2, -0.5],
            "pixel-scale": 1,
            "color-order": "bgr",
            "resize": "letterbox",
            "crop-fraction": 0.875,
            "output": "sigmoid",
            "threshold": 0.25
        }"#);
        assert_eq!(
            c,
            ModelConfigFile {
                path: FILE.into(),
                labels: Some(LabelsSource::File("/models/labels.txt".into())),
                input_size: Some(299),
                mean: Some([0.5, 0.25, -1.0]),
                std: Some([0.2, 2.0, -0.5]),
                pixel_scale: Some(1.0),
                color_order: Some(ColorOrder::Bgr),
                resize: Some(ResizeMode::Letterbox),
                crop_fraction: Some(0.875),
                output: Some(Activation::Sigmoid),
                threshold: Some(0.25),
                ..Default::default()
            }
        );
    }

    #[test]
    fn what_export_model_py_writes() {
        let c = ok(r#"{
    "labels": "imagenet_labels.txt",
    "input-size": 224,
    "mean": [
        0.485,
        0.456,
        0.406
    ],
    "std": [
        0.229,
        0.224,
        0.225
    ],
    "pixel-scale": 0.00392156862745098,
    "color-order": "rgb",
    "output": "softmax"
}
"#);
        assert_eq!(
            c.labels,
            Some(LabelsSource::File("/models/imagenet_labels.txt".into()))
        );
        assert_eq!(c.input_size, Some(224));
        assert_eq!(c.mean, Some([0.485, 0.456, 0.406]));
        assert_eq!(c.std, Some([0.229, 0.224, 0.225]));
        assert_eq!(c.pixel_scale, Some(1.0 / 255.0));
        assert_eq!(c.color_order, Some(ColorOrder::Rgb));
        assert_eq!(c.output, Some(Activation::Softmax));
        assert_eq!((c.resize, c.crop_fraction, c.threshold), (None, None, None));
    }

    #[test]
    fn a_detectors_keys() {
        let c = ok(r#"{"output-format": "yolov5", "iou-threshold": 0.5, "max-detections": 20}"#);
        assert_eq!(c.output_format, Some(OutputFormat::Yolov5));
        assert_eq!((c.iou_threshold, c.max_detections), (Some(0.5), Some(20)));
        assert!(c.sets("output-format") && !c.sets("output") && !c.sets("nonsense"));
        let e = err(r#"{"output-format": "yolo"}"#, "output-format");
        assert!(
            e.contains("unknown variant `yolo`, expected one of `auto`, `yolov8`"),
            "{e}"
        );
        err(r#"{"iou-threshold": 1.5}"#, "iou-threshold");
        err(r#"{"max-detections": -1}"#, "max-detections");
    }

    #[test]
    fn every_key_is_known_to_sets() {
        let c = ok(r#"{
            "labels": ["a"], "input-size": 8, "mean": [0, 0, 0], "std": [1, 1, 1],
            "pixel-scale": 1, "color-order": "rgb", "resize": "stretch", "crop-fraction": 1,
            "output": "none", "threshold": 0, "output-format": "auto", "iou-threshold": 0,
            "max-detections": 1
        }"#);
        for key in KEYS {
            assert!(c.sets(key), "{key}");
        }
    }

    #[test]
    fn null_is_an_unset_key() {
        let c = ok(r#"{"std": null, "output": null, "labels": null, "input-size": null}"#);
        assert_eq!(c, ok("{}"));
    }

    #[test]
    fn empty_object_sets_nothing() {
        assert_eq!(
            ok("{}"),
            ModelConfigFile {
                path: FILE.into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn every_enum_value() {
        for (s, v) in [("rgb", ColorOrder::Rgb), ("bgr", ColorOrder::Bgr)] {
            assert_eq!(
                ok(&format!(r#"{{"color-order": "{s}"}}"#)).color_order,
                Some(v)
            );
        }
        for (s, v) in [
            ("stretch", ResizeMode::Stretch),
            ("center-crop", ResizeMode::CenterCrop),
            ("letterbox", ResizeMode::Letterbox),
        ] {
            assert_eq!(ok(&format!(r#"{{"resize": "{s}"}}"#)).resize, Some(v));
        }
        for (s, v) in [
            ("softmax", Activation::Softmax),
            ("sigmoid", Activation::Sigmoid),
            ("none", Activation::None),
        ] {
            assert_eq!(ok(&format!(r#"{{"output": "{s}"}}"#)).output, Some(v));
        }
    }

    #[test]
    fn range_ends() {
        assert_eq!(ok(r#"{"input-size": 8}"#).input_size, Some(8));
        assert_eq!(ok(r#"{"input-size": 4096}"#).input_size, Some(4096));
        assert_eq!(ok(r#"{"crop-fraction": 1}"#).crop_fraction, Some(1.0));
        assert_eq!(ok(r#"{"threshold": 0}"#).threshold, Some(0.0));
        assert_eq!(ok(r#"{"threshold": 1.0}"#).threshold, Some(1.0));
        assert_eq!(
            ok(r#"{"pixel-scale": 0.00392156862745098}"#).pixel_scale,
            Some(1.0 / 255.0)
        );
    }

    #[test]
    fn labels_path_relative_to_the_json_folder_absolute_kept() {
        let at = |text: &str, file: &str| parse(text, Path::new(file)).unwrap().labels;
        let file = |p: &str| Some(LabelsSource::File(p.into()));
        assert_eq!(
            at(r#"{"labels": "sub/l.txt"}"#, "/m/x/my.json"),
            file("/m/x/sub/l.txt")
        );
        assert_eq!(
            at(r#"{"labels": "../l.txt"}"#, "rel/my.json"),
            file("rel/../l.txt")
        );
        // A config named without a folder: the labels sit beside it, in the current directory.
        assert_eq!(at(r#"{"labels": "l.txt"}"#, "my.json"), file("l.txt"));
        assert_eq!(
            at(r#"{"labels": "/abs/l.txt"}"#, "/m/x/my.json"),
            file("/abs/l.txt")
        );
    }

    #[test]
    fn labels_list() {
        assert_eq!(
            ok(r#"{"labels": ["red", " green ", "blue"]}"#).labels,
            Some(LabelsSource::List(vec![
                "red".into(),
                "green".into(),
                "blue".into()
            ]))
        );
        let e = err(r#"{"labels": []}"#, "labels");
        assert!(e.ends_with("key 'labels': the list is empty"), "{e}");
        let e = err(r#"{"labels": ["a", " "]}"#, "labels");
        assert!(e.contains("label 2 (counting from 1) is empty"), "{e}");
        let e = err(r#"{"labels": ["a", 3]}"#, "labels[1]");
        assert!(e.contains("integer `3`, expected a string"), "{e}");
        let e = err(r#"{"labels": ""}"#, "labels");
        assert!(
            e.ends_with("invalid value: string \"\", expected a labels file's path or a list of label strings"),
            "{e}"
        );
        let e = err(r#"{"labels": {"0": "a"}}"#, "labels");
        assert!(e.contains("invalid type: map"), "{e}");
    }

    #[test]
    fn wrong_array_length() {
        assert_eq!(
            err(r#"{"mean": [0.1, 0.2]}"#, "mean"),
            "model config '/models/my.json': key 'mean': invalid length 2, expected an array of \
             length 3"
        );
        let e = err(r#"{"std": [1, 1, 1, 1]}"#, "std");
        assert!(e.contains("invalid length 4"), "{e}");
        let e = err(r#"{"std": []}"#, "std");
        assert!(e.contains("invalid length 0"), "{e}");
    }

    #[test]
    fn wrong_types() {
        for (text, key, got) in [
            (
                r#"{"mean": 0.5}"#,
                "mean",
                "floating point `0.5`, expected an array",
            ),
            (
                r#"{"mean": [0.5, "0.5", 0.5]}"#,
                "mean[1]",
                r#"string "0.5", expected f64"#,
            ),
            (
                r#"{"input-size": "224"}"#,
                "input-size",
                r#"string "224", expected a whole number"#,
            ),
            (
                r#"{"input-size": 224.5}"#,
                "input-size",
                "floating point `224.5`",
            ),
            (r#"{"pixel-scale": "1/255"}"#, "pixel-scale", "expected f64"),
            (
                r#"{"crop-fraction": true}"#,
                "crop-fraction",
                "boolean `true`",
            ),
            (
                r#"{"threshold": [0.5]}"#,
                "threshold",
                "invalid type: sequence",
            ),
            (r#"{"color-order": 1}"#, "color-order", "integer `1`"),
            (r#"{"resize": false}"#, "resize", "boolean `false`"),
            (
                r#"{"labels": 5}"#,
                "labels",
                "integer `5`, expected a labels file's path",
            ),
        ] {
            let e = err(text, key);
            assert!(e.contains(got), "{text}: {e}");
        }
    }

    #[test]
    fn out_of_range() {
        for (text, key, what) in [
            (
                r#"{"input-size": 7}"#,
                "input-size",
                "integer `7`, expected a whole number from 8 to 4096",
            ),
            (r#"{"input-size": 4097}"#, "input-size", "integer `4097`"),
            (r#"{"input-size": -224}"#, "input-size", "integer `-224`"),
            (
                r#"{"input-size": 4294967520}"#,
                "input-size",
                "integer `4294967520`",
            ),
            (r#"{"std": [0.2, 0, 0.2]}"#, "std", "entry 2 is 0"),
            (r#"{"std": [0.2, 0.2, -0.0]}"#, "std", "entry 3 is -0"),
            (
                r#"{"pixel-scale": 0}"#,
                "pixel-scale",
                "greater than 0, got 0",
            ),
            (r#"{"pixel-scale": -1}"#, "pixel-scale", "got -1"),
            (r#"{"crop-fraction": 0}"#, "crop-fraction", "got 0"),
            (r#"{"crop-fraction": 1.01}"#, "crop-fraction", "got 1.01"),
            (
                r#"{"threshold": -0.1}"#,
                "threshold",
                "from 0 to 1, got -0.1",
            ),
            (r#"{"threshold": 2}"#, "threshold", "got 2"),
        ] {
            let e = err(text, key);
            assert!(e.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn bad_enum_strings_list_the_allowed_values() {
        assert_eq!(
            err(r#"{"color-order": "RGB"}"#, "color-order"),
            "model config '/models/my.json': key 'color-order': unknown variant `RGB`, expected \
             `rgb` or `bgr`"
        );
        let e = err(r#"{"resize": "crop"}"#, "resize");
        assert!(
            e.contains(
                "unknown variant `crop`, expected one of `stretch`, `center-crop`, `letterbox`"
            ),
            "{e}"
        );
        let e = err(r#"{"output": "relu"}"#, "output");
        assert!(e.contains("`softmax`, `sigmoid`, `none`"), "{e}");
    }

    #[test]
    fn unknown_key_lists_the_known_keys() {
        let e = err(r#"{"mean": [0, 0, 0], "scale": 1}"#, "scale");
        assert!(e.contains("unknown field `scale`"), "{e}");
        for key in KEYS {
            assert!(e.contains(&format!("`{key}`")), "{key} missing: {e}");
        }
        let e = err(r#"{"input_size": 224}"#, "input_size");
        assert!(e.contains("(did you mean `input-size`?)"), "{e}");
        // The list is serde's, from the struct: KEYS must be the same list.
        let listed = e.split("expected one of ").nth(1).unwrap_or_default();
        let listed: Vec<&str> = listed
            .split(" (did")
            .next()
            .unwrap_or_default()
            .split(", ")
            .map(|k| k.trim_matches('`'))
            .collect();
        assert_eq!(listed, KEYS);
    }

    #[test]
    fn invalid_json_names_file_line_and_column() {
        let e = parse("{\n  \"mean\": [0, 0, 0],\n}", Path::new(FILE)).unwrap_err();
        assert!(
            e.starts_with("model config '/models/my.json': invalid JSON: "),
            "{e}"
        );
        assert!(e.contains("line 3 column 1"), "{e}");
        let e = parse("", Path::new(FILE)).unwrap_err();
        assert!(e.contains("line 1 column 0"), "{e}");
        for (text, got) in [
            ("[1, 2]", "an array of 2"),
            ("\"x\"", "the string"),
            ("3", "the number 3"),
        ] {
            let e = parse(text, Path::new(FILE)).unwrap_err();
            assert!(
                e.starts_with("model config '/models/my.json': expected a JSON object"),
                "{e}"
            );
            assert!(e.contains(got), "{text}: {e}");
        }
    }

    #[test]
    fn load_reads_the_file_or_names_it() {
        let dir =
            std::env::temp_dir().join(format!("gst-torch-modelconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        std::fs::write(&path, r#"{"labels": "m.txt", "input-size": 128}"#).unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.path, path);
        assert_eq!(c.labels, Some(LabelsSource::File(dir.join("m.txt"))));
        assert_eq!(c.input_size, Some(128));
        std::fs::write(&path, r#"{"threshold": 3}"#).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(
            e,
            format!(
                "model config '{}': key 'threshold': expected a number from 0 to 1, got 3",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let e = load(Path::new("/nonexistent/m.json")).unwrap_err();
        assert!(
            e.starts_with("model config '/nonexistent/m.json': cannot read: "),
            "{e}"
        );
        assert!(e.contains("No such file"), "{e}");
    }

    #[test]
    fn beside_the_model() {
        assert_eq!(beside(Path::new("a/b/my.pt")), PathBuf::from("a/b/my.json"));
        assert_eq!(
            beside(Path::new("/m/model")),
            PathBuf::from("/m/model.json")
        );
        assert_eq!(beside(Path::new("v1.2.pt")), PathBuf::from("v1.2.json"));
    }

    #[test]
    fn checks_refuse_nan_and_infinity() {
        let nan = f64::NAN;
        assert!(
            check_mean(&[0.0, nan, 0.0])
                .unwrap_err()
                .contains("entry 2 is NaN")
        );
        assert!(
            check_mean(&[f64::INFINITY, 0.0, 0.0])
                .unwrap_err()
                .contains("entry 1 is inf")
        );
        assert!(
            check_std(&[1.0, 1.0, nan])
                .unwrap_err()
                .contains("entry 3 is NaN")
        );
        assert!(check_std(&[1.0, f64::NEG_INFINITY, 1.0]).is_err());
        assert!(check_pixel_scale(nan).is_err());
        assert!(check_pixel_scale(f64::INFINITY).is_err());
        assert!(check_crop_fraction(nan).unwrap_err().contains("got NaN"));
        assert!(check_threshold(nan).unwrap_err().contains("got NaN"));
    }

    #[test]
    fn checks_accept_and_refuse() {
        assert_eq!(
            check_mean(&[0.485, 0.456, 0.406]),
            Ok([0.485, 0.456, 0.406])
        );
        assert_eq!(check_mean(&[0.0, 0.0, 0.0]), Ok([0.0; 3]));
        assert_eq!(
            check_mean(&[0.0, 0.0]),
            Err("expected 3 numbers, got 2".into())
        );
        assert_eq!(check_std(&[1.0, -1.0, 0.5]), Ok([1.0, -1.0, 0.5]));
        assert!(check_std(&[1.0, 0.0, 1.0]).is_err());
        assert!(check_std(&[1.0; 4]).unwrap_err().contains("got 4"));
        assert_eq!(check_pixel_scale(1.0 / 255.0), Ok(1.0 / 255.0));
        assert!(check_pixel_scale(0.0).is_err());
        assert_eq!(check_crop_fraction(1.0), Ok(1.0));
        assert_eq!(
            check_crop_fraction(f64::MIN_POSITIVE),
            Ok(f64::MIN_POSITIVE)
        );
        assert!(check_crop_fraction(0.0).is_err());
        assert!(check_crop_fraction(1.0 + f64::EPSILON).is_err());
        assert_eq!(check_threshold(0.0), Ok(0.0));
        assert_eq!(check_threshold(1.0), Ok(1.0));
        assert!(check_threshold(-f64::MIN_POSITIVE).is_err());
        assert!(check_threshold(1.0 + f64::EPSILON).is_err());
    }
}
