//! Resolution against the model config file, and what shared models compare and adopt.

use super::*;

/// A folder of its own under the temp dir, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("torchcore-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_model(dir: &Dir, config: Option<&str>) -> Settings<ClassifySettings> {
    let model = dir.0.join("m.pt");
    std::fs::write(&model, b"not read here").unwrap();
    if let Some(text) = config {
        std::fs::write(dir.0.join("m.json"), text).unwrap();
    }
    let mut s = Settings::default();
    s.shared.model = model.to_string_lossy().into_owned();
    s
}

fn reading(s: &Settings<ClassifySettings>) -> ClassifyReading {
    let r = s.resolve().unwrap();
    s.task.resolve(&r.file).unwrap()
}

#[test]
fn without_a_config_file_the_defaults_and_the_properties() {
    let dir = Dir::new("defaults");
    let mut s = with_model(&dir, None);
    let r = s.resolve().unwrap();
    assert_eq!(r.input, InputSpec::new(224, 224));
    assert_eq!((r.labels, r.config), (LabelsChoice::BuiltIn, None));
    let c = reading(&s);
    assert_eq!((c.output, c.threshold), (Activation::Softmax, 0.0));
    s.shared.input_size.set(160);
    s.shared.resize.set(ResizeMode::Letterbox);
    s.shared.labels = Some("l.txt".into());
    let r = s.resolve().unwrap();
    assert_eq!(
        (r.input.width, r.input.resize),
        (160, ResizeMode::Letterbox)
    );
    assert_eq!(
        r.labels,
        LabelsChoice::File("l.txt".into(), "property 'labels'".into())
    );
}

#[test]
fn the_file_fills_in_what_the_properties_leave_unset() {
    let dir = Dir::new("file");
    let mut s = with_model(
        &dir,
        Some(r#"{"input-size": 299, "color-order": "bgr", "labels": "x.txt", "threshold": 0.5}"#),
    );
    let r = s.resolve().unwrap();
    assert_eq!(r.config, Some(dir.0.join("m.json")));
    assert_eq!((r.input.width, r.input.color_order), (299, ColorOrder::Bgr));
    assert_eq!(reading(&s).threshold, 0.5);
    let LabelsChoice::File(path, origin) = r.labels else {
        panic!("labels")
    };
    assert_eq!(path, dir.0.join("x.txt"));
    assert!(
        origin.starts_with("key 'labels' of model config"),
        "{origin}"
    );
    // Set explicitly, even to the default, a property wins.
    s.shared.input_size.set(224);
    s.task.threshold.set(0.0);
    let r = s.resolve().unwrap();
    assert_eq!((r.input.width, reading(&s).threshold), (224, 0.0));
}

#[test]
fn bad_values_name_the_property_or_the_file() {
    let dir = Dir::new("bad");
    let mut s = with_model(&dir, Some(r#"{"input-size": 7}"#));
    let e = s.resolve().unwrap_err();
    assert!(e.contains("m.json': key 'input-size'"), "{e}");
    s.shared.model_config = Some(dir.0.join("none.json").to_string_lossy().into_owned());
    let e = s.resolve().unwrap_err();
    assert!(
        e.contains("cannot read") && e.ends_with("(property 'model-config')"),
        "{e}"
    );
    let mut s = with_model(&Dir::new("bad-mean"), None);
    s.shared.mean.set(vec![0.0, f64::NAN, 0.0]);
    let e = s.resolve().unwrap_err();
    assert!(
        e.starts_with("Property 'mean': ") && e.contains("entry 2 is NaN"),
        "{e}"
    );
}

#[test]
fn shared_settings_compare_values_and_name_what_differs() {
    let a = SharedSettings::default();
    let mut b = a.clone();
    // Set to the default value: the same setting.
    b.input_size.set(DEFAULT_INPUT_SIZE);
    assert_eq!(a, b);
    assert!(a.differences(&b).is_empty());
    b.input_size.set(160);
    b.mean.set(vec![0.0, 0.0, 0.0]);
    b.labels = Some("l.txt".into());
    assert_eq!(
        b.differences(&a),
        vec![
            ("labels", "l.txt".to_string(), "(unset)".to_string()),
            ("input-size", "160".to_string(), "224".to_string()),
            (
                "mean",
                "<0,0,0>".to_string(),
                "<0.485,0.456,0.406>".to_string()
            ),
        ]
    );
    assert_eq!(SharedSettings::NAMES.len(), 15);
    assert_eq!(SharedSettings::NAMES[0], "model");
}

#[test]
fn adopting_takes_the_others_values_and_what_it_set() {
    let mut mine = Settings::<ClassifySettings>::default();
    let mut theirs = Settings::<ClassifySettings>::default();
    theirs.shared.model = "/other.pt".into();
    theirs.shared.input_size.set(160);
    theirs.task.top_k = 3;
    let changed = mine.adopt_shared(&theirs);
    assert_eq!(changed, vec!["model", "input-size"]);
    assert_eq!(mine.shared, theirs.shared);
    assert!(
        mine.shared.input_size.is_set(),
        "set there: set here, winning over a file"
    );
    assert_eq!(mine.task.top_k, DEFAULT_TOP_K, "not a shared setting");
}

#[test]
fn comma_lists_drop_blanks() {
    assert_eq!(comma_list(" car, truck ,,"), vec!["car", "truck"]);
    assert!(comma_list("").is_empty());
}

#[test]
fn names_round_trip() {
    for e in Engine::ALL {
        assert_eq!(Engine::from_name(e.name()), Some(*e));
    }
    assert_eq!(InferenceRegion::RoiList.to_string(), "roi-list");
    assert_eq!(Engine::from_name("cuda"), None);
}

#[test]
fn a_detector_defaults_to_letterboxed_0_1_rgb_at_640_padded_grey() {
    let dir = Dir::new("detect");
    let model = dir.0.join("d.pt");
    std::fs::write(&model, b"not read here").unwrap();
    let mut s = Settings::<DetectSettings>::default();
    assert_eq!(s.shared.model, "", "no default detector");
    s.shared.model = model.to_string_lossy().into_owned();
    let r = s.resolve().unwrap();
    assert_eq!(
        (r.input.width, r.input.resize),
        (640, ResizeMode::Letterbox)
    );
    assert_eq!(r.input.normalization.mean, [0.0; 3]);
    assert_eq!(r.input.normalization.std, [1.0; 3]);
    assert_eq!(r.input.pad, Some([114, 114, 114]));
    let d = s.task.resolve(&r.file).unwrap();
    assert_eq!(d.output_format, OutputFormat::Auto);
    assert_eq!((d.threshold, d.max_detections), (DETECT_THRESHOLD, 100));
    // The file's keys count; a classifier's key is refused.
    std::fs::write(
        dir.0.join("d.json"),
        r#"{"output-format": "yolov5", "iou-threshold": 0.6}"#,
    )
    .unwrap();
    let r = s.resolve().unwrap();
    let d = s.task.resolve(&r.file).unwrap();
    assert_eq!(
        (d.output_format, d.iou_threshold),
        (OutputFormat::Yolov5, 0.6)
    );
    std::fs::write(dir.0.join("d.json"), r#"{"output": "sigmoid"}"#).unwrap();
    let e = s.resolve().unwrap_err();
    assert!(e.contains("key 'output' is for torchclassify"), "{e}");
}

#[test]
fn a_classifier_refuses_a_detectors_keys() {
    let dir = Dir::new("foreign");
    let s = with_model(&dir, Some(r#"{"output-format": "yolov8"}"#));
    let e = s.resolve().unwrap_err();
    assert!(e.contains("key 'output-format' is for torchdetect"), "{e}");
}
