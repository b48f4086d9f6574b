//! Unit tests of detect.rs.

use super::*;

type Tensor = (Vec<f32>, Vec<usize>);
const V8: OutputFormat = OutputFormat::Yolov8;
const V5: OutputFormat = OutputFormat::Yolov5;
const BOXES: OutputFormat = OutputFormat::Boxes;
const ID: Mapping = Mapping::identity();

/// A yolov8 head of `n` candidates; rows `[cx, cy, w, h, class, score]` first (the other
/// classes scoring 0.01), the rest all 0.
fn v8(n: usize, nc: usize, rows: &[[f32; 6]]) -> Tensor {
    let mut data = vec![0.0; (4 + nc) * n];
    for (i, r) in rows.iter().enumerate() {
        for (c, &v) in r[..4].iter().enumerate() {
            data[c * n + i] = v;
        }
        for c in 0..nc {
            data[(4 + c) * n + i] = if c == r[4] as usize { r[5] } else { 0.01 };
        }
    }
    (data, vec![1, 4 + nc, n])
}

/// A yolov5 head; rows `[cx, cy, w, h, objectness, class, class score]`.
fn v5(n: usize, nc: usize, rows: &[[f32; 7]]) -> Tensor {
    let mut data = vec![0.0; (5 + nc) * n];
    for (r, row) in rows.iter().zip(data.chunks_exact_mut(5 + nc)) {
        row[..5].copy_from_slice(&r[..5]);
        row[5 + r[5] as usize] = r[6];
    }
    (data, vec![1, n, 5 + nc])
}

/// The three box-list tensors from rows `[x1, y1, x2, y2, score, class]`.
fn box_list(rows: &[[f32; 6]], batch: bool) -> Vec<Tensor> {
    let n = rows.len();
    let col = |k: usize| rows.iter().map(|r| r[k]).collect::<Vec<_>>();
    let boxes = rows.iter().flat_map(|r| r[..4].to_vec()).collect();
    let (bs, s) = if batch {
        (vec![1, n, 4], vec![1, n])
    } else {
        (vec![n, 4], vec![n])
    };
    vec![(boxes, bs), (col(4), s.clone()), (col(5), s)]
}

/// Decodes and returns `[x1, y1, x2, y2, class, confidence]` per detection, checking the
/// counters add up.
fn run_with(
    format: OutputFormat,
    outputs: &[Tensor],
    config: &DecodeConfig,
    mapping: Mapping,
    (fw, fh): (u32, u32),
) -> (Vec<[f32; 6]>, DecodeStats) {
    let shapes: Vec<&[usize]> = outputs.iter().map(|t| t.1.as_slice()).collect();
    let resolved = resolve_format(format, &shapes, None).unwrap();
    let mut decoder = Decoder::new(resolved, config.clone());
    let views: Vec<_> = outputs
        .iter()
        .map(|t| TensorView::new(&t.0, &t.1))
        .collect();
    let mut out = Vec::new();
    let s = decoder.decode(&views, &mapping, fw, fh, &mut out).unwrap();
    let sum = s.other_class + s.dropped_invalid + s.dropped_small + s.suppressed;
    assert_eq!(s.candidates, sum + s.over_limit + s.kept);
    assert_eq!(s.kept, out.len());
    (out.iter().map(row).collect(), s)
}

fn row(d: &Detection) -> [f32; 6] {
    let (x2, y2) = (d.x + d.width, d.y + d.height);
    [d.x, d.y, x2, y2, d.class_id as f32, d.confidence]
}

fn run(format: OutputFormat, outputs: &[Tensor]) -> (Vec<[f32; 6]>, DecodeStats) {
    run_with(format, outputs, &DecodeConfig::default(), ID, (640, 640))
}

fn config(f: impl FnOnce(&mut DecodeConfig)) -> DecodeConfig {
    let mut config = DecodeConfig::default();
    f(&mut config);
    config
}

#[test]
fn yolov8_nms_leaves_one_box_per_object() {
    let head = v8(
        10,
        3,
        &[
            [100.0, 100.0, 50.0, 50.0, 0.0, 0.80],
            [102.0, 101.0, 50.0, 52.0, 0.0, 0.90],
            [98.0, 99.0, 48.0, 50.0, 0.0, 0.70],
            [300.0, 200.0, 60.0, 40.0, 2.0, 0.60],
            [303.0, 200.0, 60.0, 40.0, 2.0, 0.65],
            [297.0, 202.0, 58.0, 40.0, 2.0, 0.50],
            [500.0, 500.0, 30.0, 30.0, 1.0, 0.10],
        ],
    );
    let (out, stats) = run(V8, &[head]);
    let want = [
        [77.0, 75.0, 127.0, 127.0, 0.0, 0.9],
        [273.0, 180.0, 333.0, 220.0, 2.0, 0.65],
    ];
    assert_eq!(out, want);
    assert_eq!((stats.candidates, stats.suppressed, stats.kept), (6, 4, 2));
}

#[test]
fn yolov5_nms_and_objectness_times_class_score() {
    let head = v5(
        8,
        2,
        &[
            [100.0, 100.0, 50.0, 50.0, 0.9, 0.0, 0.5],
            [101.0, 100.0, 50.0, 50.0, 0.6, 0.0, 0.9],
            [400.0, 100.0, 40.0, 40.0, 0.3, 1.0, 0.9],
            [402.0, 101.0, 40.0, 40.0, 0.3, 1.0, 0.85],
            // High objectness, low class score: 0.18 < 0.25.
            [200.0, 400.0, 40.0, 40.0, 0.9, 1.0, 0.2],
            // Objectness below the threshold: skipped whatever the class score.
            [300.0, 400.0, 40.0, 40.0, 0.2, 0.0, 1.0],
        ],
    );
    let (out, stats) = run(V5, &[head]);
    let want = [
        [76.0, 75.0, 126.0, 125.0, 0.0, 0.6f32 * 0.9],
        [380.0, 80.0, 420.0, 120.0, 1.0, 0.3f32 * 0.9],
    ];
    assert_eq!(out, want);
    assert_eq!((stats.candidates, stats.suppressed), (4, 2));
}

#[test]
fn boxes_format_with_and_without_batch_dimension_skips_nms() {
    let rows = [
        [10.0, 10.0, 110.0, 110.0, 0.5, 3.0],
        [12.0, 10.0, 112.0, 110.0, 0.9, 3.0],
        [300.0, 300.0, 350.0, 380.0, 0.2, 1.0],
    ];
    for batch in [false, true] {
        let (out, stats) = run(BOXES, &box_list(&rows, batch));
        let want = [
            [12.0, 10.0, 112.0, 110.0, 3.0, 0.9],
            [10.0, 10.0, 110.0, 110.0, 3.0, 0.5],
        ];
        assert_eq!(out, want, "batch {batch}");
        assert_eq!((stats.candidates, stats.suppressed), (2, 0));
    }
}

#[test]
fn boxes_format_drops_invalid_class_ids_and_keeps_the_cap() {
    let rows = [
        [0.0, 0.0, 10.0, 10.0, 0.9, -1.0],
        [0.0, 0.0, 10.0, 10.0, 0.8, f32::NAN],
        [20.0, 0.0, 30.0, 10.0, 0.7, 2.0],
        [40.0, 0.0, 50.0, 10.0, 0.6, 2.0],
    ];
    let cap = config(|c| c.max_detections = 1);
    let (out, stats) = run_with(BOXES, &box_list(&rows, false), &cap, ID, (64, 64));
    assert_eq!(out, [[20.0, 0.0, 30.0, 10.0, 2.0, 0.7]]);
    assert_eq!((stats.dropped_invalid, stats.over_limit), (2, 1));
}

#[test]
fn nms_is_class_aware_and_suppresses_above_the_iou_threshold() {
    let (a, b) = ([100.0, 100.0, 50.0, 50.0], [104.0, 100.0, 50.0, 50.0]);
    let pair = |ca: f32, cb: f32| {
        [
            [a[0], a[1], a[2], a[3], ca, 0.9],
            [b[0], b[1], b[2], b[3], cb, 0.8],
        ]
    };
    let (out, _) = run(V8, &[v8(4, 2, &pair(0.0, 1.0))]);
    assert_eq!(out.len(), 2);
    let (out, stats) = run(V8, &[v8(4, 2, &pair(1.0, 1.0))]);
    assert_eq!((out.len(), stats.suppressed), (1, 1));
    // Same height, offset 40 of width 100: IoU 60 / 140 < 0.45 stays; offset 30: 70 / 130.
    for (dx, kept) in [(40.0, 2), (30.0, 1)] {
        let rows = [
            [50.0, 50.0, 100.0, 100.0, 0.0, 0.9],
            [50.0 + dx, 50.0, 100.0, 100.0, 0.0, 0.8],
        ];
        assert_eq!(run(V8, &[v8(3, 1, &rows)]).0.len(), kept);
    }
}

#[test]
fn confidence_equal_to_threshold_is_kept() {
    let rows = [
        [50.0, 50.0, 20.0, 20.0, 0.0, 0.25],
        [150.0, 50.0, 20.0, 20.0, 0.0, 0.2499],
    ];
    let (out, stats) = run(V8, &[v8(3, 1, &rows)]);
    assert_eq!(out, [[40.0, 40.0, 60.0, 60.0, 0.0, 0.25]]);
    assert_eq!(stats.candidates, 1);
}

#[test]
fn max_detections_keeps_the_most_confident() {
    let rows: Vec<_> = [0.3, 0.9, 0.5, 0.7, 0.4]
        .iter()
        .enumerate()
        .map(|(i, &s)| [50.0 + 100.0 * i as f32, 50.0, 40.0, 40.0, 0.0, s])
        .collect();
    let cap = config(|c| c.max_detections = 3);
    let (out, stats) = run_with(V8, &[v8(6, 1, &rows)], &cap, ID, (640, 640));
    let confidences: Vec<f32> = out.iter().map(|d| d[5]).collect();
    assert_eq!(confidences, [0.9, 0.7, 0.5]);
    assert_eq!((stats.kept, stats.over_limit), (3, 2));
}

#[test]
fn letterbox_maps_boxes_back_to_wide_and_tall_frames() {
    // The mapping itself is tested with geometry::Mapping.
    let d = DecodeConfig::default();
    let m = Mapping::letterbox(640, 480, 640, 640);
    let rows = box_list(&[[100.0, 180.0, 200.0, 280.0, 0.9, 0.0]], false);
    let (out, _) = run_with(BOXES, &rows, &d, m, (640, 480));
    assert_eq!(out, [[100.0, 100.0, 200.0, 200.0, 0.0, 0.9]]);
    let m = Mapping::letterbox(1080, 1920, 640, 640);
    let rows = box_list(&[[240.0, 100.0, 340.0, 200.0, 0.9, 0.0]], true);
    let (out, _) = run_with(BOXES, &rows, &d, m, (1080, 1920));
    assert_eq!(out, [[300.0, 300.0, 600.0, 600.0, 0.0, 0.9]]);
}

#[test]
fn boxes_are_clipped_to_the_frame() {
    let rows = [
        [-20.0, -5.0, 50.0, 40.0, 0.9, 0.0],
        [600.0, 400.0, 700.0, 500.0, 0.8, 0.0],
    ];
    let d = DecodeConfig::default();
    let (out, _) = run_with(BOXES, &box_list(&rows, false), &d, ID, (640, 480));
    let want = [
        [0.0, 0.0, 50.0, 40.0, 0.0, 0.9],
        [600.0, 400.0, 640.0, 480.0, 0.0, 0.8],
    ];
    assert_eq!(out, want);
}

#[test]
fn non_finite_and_empty_boxes_are_dropped_and_counted() {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    let rows = [
        [nan, 50.0, 20.0, 20.0, 0.0, 0.9],
        [50.0, 50.0, inf, 20.0, 0.0, 0.9],
        [50.0, 50.0, 0.0, 20.0, 0.0, 0.9],
        [50.0, 50.0, -10.0, 20.0, 0.0, 0.9],
        [900.0, 50.0, 20.0, 20.0, 0.0, 0.9],
        [50.0, 50.0, 20.0, 20.0, 0.0, inf],
        // A NaN score never passes the threshold.
        [300.0, 300.0, 20.0, 20.0, 0.0, nan],
        [200.0, 200.0, 20.0, 20.0, 0.0, 0.9],
    ];
    let (out, stats) = run(V8, &[v8(8, 1, &rows)]);
    assert_eq!(out, [[190.0, 190.0, 210.0, 210.0, 0.0, 0.9]]);
    assert_eq!((stats.candidates, stats.dropped_invalid), (7, 6));
}

#[test]
fn min_size_drops_small_boxes_after_clipping() {
    // The first is 30 wide, 6 of it inside the frame.
    let rows = [
        [-24.0, 10.0, 6.0, 40.0, 0.9, 0.0],
        [100.0, 100.0, 108.0, 140.0, 0.9, 0.0],
        [200.0, 200.0, 210.0, 210.0, 0.9, 0.0],
    ];
    let min = config(|c| c.min_size = 10.0);
    let (out, stats) = run_with(BOXES, &box_list(&rows, false), &min, ID, (640, 480));
    assert_eq!(out, [[200.0, 200.0, 210.0, 210.0, 0.0, 0.9]]);
    assert_eq!(stats.dropped_small, 2);
}

#[test]
fn object_class_keeps_only_the_listed_classes() {
    let rows = [0.0, 1.0, 2.0, 3.0].map(|c| [50.0 + 100.0 * c, 50.0, 20.0, 20.0, c, 0.9]);
    let only = config(|c| c.object_class = vec![3, 1]);
    let (out, stats) = run_with(V8, &[v8(6, 4, &rows)], &only, ID, (640, 640));
    assert_eq!(out.iter().map(|d| d[4]).collect::<Vec<_>>(), [1.0, 3.0]);
    assert_eq!(stats.other_class, 2);
}

#[test]
fn auto_detects_each_format() {
    type Shapes = &'static [&'static [usize]];
    let cases: [(Shapes, _, _, _); 6] = [
        (&[&[1, 84, 8400]], None, V8, Some(80)),
        (&[&[1, 25200, 85]], Some(80), V5, Some(80)),
        (&[&[1, 7, 4], &[1, 7], &[1, 7]], None, BOXES, None),
        (&[&[7, 4], &[7], &[7]], Some(3), BOXES, Some(3)),
        // A square head is told apart by the labels only.
        (&[&[1, 85, 85]], Some(80), V5, Some(80)),
        (&[&[1, 85, 85]], Some(81), V8, Some(81)),
    ];
    for (shapes, labels, format, classes) in cases {
        let r = resolve_format(OutputFormat::Auto, shapes, labels).unwrap();
        assert_eq!(
            (r.format(), r.num_classes()),
            (format, classes),
            "{shapes:?}"
        );
        assert_eq!(r.builtin_labels().is_some(), classes == Some(80));
    }
}

#[test]
fn auto_refuses_to_guess() {
    let err = resolve_format(OutputFormat::Auto, &[[1, 85, 85]], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "output-format=auto cannot tell the detector's output format from output shapes \
         [1, 85, 85]: expected one tensor [1, 4+classes, candidates] (yolov8) or \
         [1, candidates, 5+classes] (yolov5), or three tensors boxes [N, 4], scores [N], \
         class ids [N] (boxes); set output-format to yolov8, yolov5 or boxes"
    );
    for shapes in [vec![vec![1, 1000]], vec![vec![1, 84, 8400], vec![2, 3]]] {
        let err = resolve_format(OutputFormat::Auto, &shapes, None).unwrap_err();
        assert_eq!(err, DetectError::Undecidable { shapes });
    }
}

#[test]
fn shape_errors_name_the_shape_and_output_format() {
    let text = |format, shapes: &[&[usize]], labels| {
        resolve_format(format, shapes, labels)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        text(V8, &[&[1, 1000]], None),
        "output has shape [1, 1000]: not a detector's output for output-format=yolov8 \
         (expected [1, 4+classes, candidates]); a 2-D output [batch, classes] is what a \
         classifier gives"
    );
    let err = text(V5, &[&[1, 8400, 5]], None);
    assert!(
        err.ends_with("yolov5 (expected [1, candidates, 5+classes])"),
        "{err}"
    );
    let err = text(V8, &[&[1, 84, 8400], &[1, 84, 8400]], None);
    assert!(err.starts_with("output-format=yolov8 expects 1 output tensor, the model gave 2"));
    let err = text(BOXES, &[&[5, 3], &[5], &[5]], None);
    assert!(err.starts_with("boxes output has shape [5, 3]"), "{err}");
    let err = text(BOXES, &[&[5, 4], &[5, 1], &[5]], None);
    assert!(err.starts_with("scores output has shape [5, 1]"), "{err}");
    assert_eq!(
        text(BOXES, &[&[5, 4], &[4], &[5]], None),
        "output-format=boxes: the outputs list different numbers of detections: boxes \
         [5, 4] has 5, scores [4] has 4, class ids [5] has 5"
    );
    assert_eq!(
        text(V8, &[&[1, 84, 8400]], Some(10)),
        "output has shape [1, 84, 8400]: 80 classes for output-format=yolov8, but 10 labels \
         were given (one label per class is needed)"
    );
    let err = text(OutputFormat::Auto, &[&[1, 25200, 85]], Some(3));
    assert!(
        err.contains("80 classes for output-format=yolov5, but 3 labels"),
        "{err}"
    );
}

#[test]
fn decode_refuses_data_that_does_not_fit_and_reuses_buffers() {
    let r = resolve_format(V8, &[[1, 6, 4]], None).unwrap();
    let mut d = Decoder::new(r, DecodeConfig::default());
    let mut out = Vec::new();
    let mut go = |data: &[f32], shape: &[usize]| {
        let result = d.decode(&[TensorView::new(data, shape)], &ID, 64, 64, &mut out);
        result.map(|_| out.iter().map(row).collect::<Vec<_>>())
    };
    let err = go(&[0.0; 23], &[1, 6, 4]).unwrap_err().to_string();
    assert_eq!(err, "output of shape [1, 6, 4] carries 23 values, not 24");
    let err = go(&[0.0; 28], &[1, 7, 4]).unwrap_err().to_string();
    let want = "output has shape [1, 7, 4]: 3 classes for output-format=yolov8, but the \
                model gave 2 when loaded";
    assert_eq!(err, want);
    // Another candidate count is fine, and each frame starts afresh.
    let two = [
        [10.0, 10.0, 8.0, 8.0, 0.0, 0.9],
        [40.0, 40.0, 8.0, 8.0, 1.0, 0.8],
    ];
    let (data, shape) = v8(5, 2, &two);
    assert_eq!(go(&data, &shape).unwrap().len(), 2);
    let (data, shape) = v8(3, 2, &[[20.0, 20.0, 8.0, 8.0, 1.0, 0.7]]);
    assert_eq!(
        go(&data, &shape).unwrap(),
        [[16.0, 16.0, 24.0, 24.0, 1.0, 0.7]]
    );
    assert_eq!(out[0].pixel_rect(20, 20), (16, 16, 4, 4));
}

#[test]
fn format_names_and_labels() {
    for &f in OutputFormat::ALL {
        assert_eq!(f.name().parse::<OutputFormat>().unwrap(), f);
        assert_eq!(f.to_string(), f.name());
    }
    let err = "yolo".parse::<OutputFormat>().unwrap_err().to_string();
    assert_eq!(
        err,
        "output-format \"yolo\" is not one of auto, yolov8, yolov5, boxes"
    );
    let l = Labels::coco();
    let some = [0, 1, 9, 62, 79].map(|i| l.get(i).map_or("", |s| &**s));
    assert_eq!(
        (l.len(), some),
        (
            80,
            ["person", "bicycle", "traffic light", "tv", "toothbrush"]
        )
    );
}
