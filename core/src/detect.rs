//! From a detector's output tensors to boxes in frame pixels.
//!
//! [`resolve_format`] reads the output shapes once (from a forward pass on a blank image) and
//! settles the layout and class count; a [`Decoder`] built from its answer then turns each
//! frame's outputs into [`Detection`]s: score threshold and class filter, mapping from model
//! input pixels back to frame pixels ([`Mapping`]), clipping, removal of invalid and small
//! boxes, class-aware greedy non-maximum suppression and the cap on the number of boxes. The
//! decoder keeps its scratch buffers, so once warm a frame allocates nothing.

pub use crate::geometry::Mapping;
use crate::geometry::{Rect, iou_corners};
use crate::labels::Labels;
use std::fmt;
use std::str::FromStr;

/// Default minimum confidence of a kept box.
pub const DEFAULT_THRESHOLD: f32 = 0.25;
/// Default IoU above which a box of the same class as a better one is suppressed.
pub const DEFAULT_IOU_THRESHOLD: f32 = 0.45;
/// Default maximum number of boxes per frame.
pub const DEFAULT_MAX_DETECTIONS: usize = 100;

/// How a detector lays out its output tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Chosen from the output shapes by [`resolve_format`].
    #[default]
    Auto,
    /// One tensor `[1, 4+classes, candidates]`: rows cx, cy, w, h (input pixels), then one
    /// score row per class (ultralytics YOLOv8/YOLO11 raw head).
    Yolov8,
    /// One tensor `[1, candidates, 5+classes]`: cx, cy, w, h, objectness, class scores; a
    /// candidate's confidence is objectness × its best class score.
    Yolov5,
    /// Three tensors, already suppressed: boxes `[N, 4]` (x1, y1, x2, y2 in input pixels),
    /// scores `[N]`, class ids `[N]`; each may carry a leading batch dimension of 1.
    Boxes,
}

crate::names! {
    OutputFormat { Auto = "auto", Yolov8 = "yolov8", Yolov5 = "yolov5", Boxes = "boxes" }
}

impl FromStr for OutputFormat {
    type Err = DetectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::from_name(s).ok_or_else(|| DetectError::UnknownFormat(s.to_string()))
    }
}

/// One output tensor: row-major `f32` values and their shape.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub data: &'a [f32],
    pub shape: &'a [usize],
}

impl<'a> TensorView<'a> {
    pub fn new(data: &'a [f32], shape: &'a [usize]) -> Self {
        TensorView { data, shape }
    }
}

impl AsRef<[usize]> for TensorView<'_> {
    fn as_ref(&self) -> &[usize] {
        self.shape
    }
}

/// Which of a format's outputs an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputRole {
    /// The single tensor of yolov8 or yolov5.
    Head,
    Boxes,
    Scores,
    ClassIds,
}

impl OutputRole {
    fn name(self) -> &'static str {
        match self {
            OutputRole::Head => "output",
            OutputRole::Boxes => "boxes output",
            OutputRole::Scores => "scores output",
            OutputRole::ClassIds => "class ids output",
        }
    }

    fn expected(self, format: OutputFormat) -> &'static str {
        match (self, format) {
            (OutputRole::Head, OutputFormat::Yolov5) => "[1, candidates, 5+classes]",
            (OutputRole::Head, _) => "[1, 4+classes, candidates]",
            (OutputRole::Boxes, _) => "[N, 4] or [1, N, 4]",
            (OutputRole::Scores | OutputRole::ClassIds, _) => "[N] or [1, N]",
        }
    }

    /// The number of detections a box-list output of an accepted shape lists.
    fn rows(self, shape: &[usize]) -> usize {
        let skip = if self == OutputRole::Boxes { 2 } else { 1 };
        shape.len().checked_sub(skip).map_or(0, |i| shape[i])
    }
}

/// What is wrong with a format name, the output shapes or a frame's output data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectError {
    /// A format name other than auto, yolov8, yolov5 or boxes.
    UnknownFormat(String),
    /// The format needs `expected` output tensors; the model gave these shapes.
    OutputCount {
        format: OutputFormat,
        expected: usize,
        shapes: Vec<Vec<usize>>,
    },
    /// An output's shape does not fit the format.
    BadShape {
        format: OutputFormat,
        role: OutputRole,
        shape: Vec<usize>,
    },
    /// `auto` cannot tell the format from these output shapes.
    Undecidable { shapes: Vec<Vec<usize>> },
    /// The three outputs of `boxes` (these shapes, in order) list different numbers of boxes.
    LengthMismatch { shapes: [Vec<usize>; 3] },
    /// The output's class count differs from the number of labels (`loaded` false) or from the
    /// count found when the model was loaded (`loaded` true), given as `expected`.
    ClassCount {
        format: OutputFormat,
        shape: Vec<usize>,
        classes: usize,
        expected: usize,
        loaded: bool,
    },
    /// An output's data does not hold as many values as its shape says.
    DataLength { shape: Vec<usize>, len: usize },
}

fn count_of(s: &[usize]) -> Option<usize> {
    s.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn shapes_text(shapes: &[Vec<usize>]) -> String {
    let text: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
    text.join(", ")
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectError::UnknownFormat(s) => {
                write!(
                    f,
                    "output-format {s:?} is not one of auto, yolov8, yolov5, boxes"
                )
            }
            DetectError::OutputCount {
                format,
                expected,
                shapes,
            } => write!(
                f,
                "output-format={format} expects {expected} output tensor{}, the model gave {} \
                 (shapes {})",
                if *expected == 1 { "" } else { "s" },
                shapes.len(),
                shapes_text(shapes)
            ),
            DetectError::BadShape {
                format,
                role,
                shape,
            } => {
                let (name, expected) = (role.name(), role.expected(*format));
                write!(
                    f,
                    "{name} has shape {shape:?}: not a detector's output for \
                     output-format={format} (expected {expected})"
                )?;
                if *role == OutputRole::Head && shape.len() == 2 {
                    f.write_str("; a 2-D output [batch, classes] is what a classifier gives")?;
                }
                Ok(())
            }
            DetectError::Undecidable { shapes } => write!(
                f,
                "output-format=auto cannot tell the detector's output format from output shapes \
                 {}: expected one tensor [1, 4+classes, candidates] (yolov8) or \
                 [1, candidates, 5+classes] (yolov5), or three tensors boxes [N, 4], scores [N], \
                 class ids [N] (boxes); set output-format to yolov8, yolov5 or boxes",
                shapes_text(shapes)
            ),
            DetectError::LengthMismatch { shapes: [b, s, c] } => write!(
                f,
                "output-format=boxes: the outputs list different numbers of detections: boxes \
                 {b:?} has {}, scores {s:?} has {}, class ids {c:?} has {}",
                OutputRole::Boxes.rows(b),
                OutputRole::Scores.rows(s),
                OutputRole::ClassIds.rows(c)
            ),
            DetectError::ClassCount {
                format,
                shape,
                classes,
                expected,
                loaded,
            } => {
                write!(
                    f,
                    "output has shape {shape:?}: {classes} classes for output-format="
                )?;
                match loaded {
                    false => write!(
                        f,
                        "{format}, but {expected} labels were given (one label per class is \
                         needed)"
                    ),
                    true => write!(f, "{format}, but the model gave {expected} when loaded"),
                }
            }
            DetectError::DataLength { shape, len } => match count_of(shape) {
                Some(n) => write!(f, "output of shape {shape:?} carries {len} values, not {n}"),
                None => write!(
                    f,
                    "output shape {shape:?} is too large ({len} values given)"
                ),
            },
        }
    }
}

impl std::error::Error for DetectError {}

/// The layout read from a set of output shapes, for a concrete format: candidate count and
/// class count for the heads, box count for box lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Yolov8(usize, usize),
    Yolov5(usize, usize),
    Boxes(usize),
}

fn shape_list<S: AsRef<[usize]>>(shapes: &[S]) -> Vec<Vec<usize>> {
    shapes.iter().map(|s| s.as_ref().to_vec()).collect()
}

fn layout<S: AsRef<[usize]>>(format: OutputFormat, shapes: &[S]) -> Result<Layout, DetectError> {
    let expected = if format == OutputFormat::Boxes { 3 } else { 1 };
    if format == OutputFormat::Auto || shapes.len() != expected {
        let shapes = shape_list(shapes);
        return Err(DetectError::OutputCount {
            format,
            expected,
            shapes,
        });
    }
    let bad = |role, shape: &[usize]| {
        let shape = shape.to_vec();
        Err(DetectError::BadShape {
            format,
            role,
            shape,
        })
    };
    let s = shapes[0].as_ref();
    match (format, s) {
        (OutputFormat::Yolov8, &[1, c, n]) if c >= 5 => Ok(Layout::Yolov8(n, c - 4)),
        (OutputFormat::Yolov5, &[1, n, c]) if c >= 6 => Ok(Layout::Yolov5(n, c - 5)),
        (OutputFormat::Yolov8 | OutputFormat::Yolov5, _) => bad(OutputRole::Head, s),
        _ => {
            let roles = [OutputRole::Boxes, OutputRole::Scores, OutputRole::ClassIds];
            let three: [&[usize]; 3] = std::array::from_fn(|i| shapes[i].as_ref());
            for (role, s) in roles.into_iter().zip(three) {
                let fits = match role {
                    OutputRole::Boxes => matches!(s, [_, 4] | [1, _, 4]),
                    _ => matches!(s, [_] | [1, _]),
                };
                if !fits {
                    return bad(role, s);
                }
            }
            let rows: [usize; 3] = std::array::from_fn(|i| roles[i].rows(three[i]));
            if rows[1] != rows[0] || rows[2] != rows[0] {
                let shapes = three.map(<[usize]>::to_vec);
                return Err(DetectError::LengthMismatch { shapes });
            }
            Ok(Layout::Boxes(rows[0]))
        }
    }
}

/// A concrete output format and its class count, as settled by [`resolve_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedFormat {
    format: OutputFormat,
    num_classes: Option<usize>,
}

impl ResolvedFormat {
    /// Never [`OutputFormat::Auto`].
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// The class count: read from the shape for yolov8 and yolov5; for boxes the number of
    /// labels when given, else `None`.
    pub fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }

    /// The built-in COCO names when the model has 80 classes (for use when no labels are set).
    pub fn builtin_labels(&self) -> Option<Labels> {
        (self.num_classes == Some(80)).then(Labels::coco)
    }
}

/// Settles the output format and class count from the output shapes of one forward pass.
///
/// `num_labels` is the number of labels the user gave, if any; with yolov8 and yolov5 it must
/// equal the class count the shape implies. `auto` picks boxes for three tensors; for one tensor
/// `[1, a, b]` yolov8 when `a >= 5` and `b > a`, yolov5 when `b >= 6` and `a > b`, and otherwise
/// the layout whose class count alone matches `num_labels`; anything else is an error asking for
/// `output-format`.
pub fn resolve_format<S: AsRef<[usize]>>(
    format: OutputFormat,
    shapes: &[S],
    num_labels: Option<usize>,
) -> Result<ResolvedFormat, DetectError> {
    let format = match format {
        OutputFormat::Auto => guess_format(shapes, num_labels).ok_or_else(|| {
            let shapes = shape_list(shapes);
            DetectError::Undecidable { shapes }
        })?,
        f => f,
    };
    let num_classes = match layout(format, shapes)? {
        Layout::Yolov8(_, classes) | Layout::Yolov5(_, classes) => match num_labels {
            Some(labels) if labels != classes => {
                return Err(DetectError::ClassCount {
                    format,
                    shape: shapes[0].as_ref().to_vec(),
                    classes,
                    expected: labels,
                    loaded: false,
                });
            }
            _ => Some(classes),
        },
        Layout::Boxes(_) => num_labels,
    };
    Ok(ResolvedFormat {
        format,
        num_classes,
    })
}

fn guess_format<S: AsRef<[usize]>>(shapes: &[S], labels: Option<usize>) -> Option<OutputFormat> {
    let (a, b) = match shapes {
        [_, _, _] => return Some(OutputFormat::Boxes),
        [one] => match *one.as_ref() {
            [1, a, b] => (a, b),
            _ => return None,
        },
        _ => return None,
    };
    if a >= 5 && b > a {
        return Some(OutputFormat::Yolov8);
    }
    if b >= 6 && a > b {
        return Some(OutputFormat::Yolov5);
    }
    let l = labels?;
    match (a >= 5 && a == l + 4, b >= 6 && b == l + 5) {
        (true, false) => Some(OutputFormat::Yolov8),
        (false, true) => Some(OutputFormat::Yolov5),
        _ => None,
    }
}

/// One detected object, in frame pixels, clipped to the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub class_id: u32,
    pub confidence: f32,
}

impl Detection {
    pub fn rect(&self) -> Rect {
        Rect::new(self.x, self.y, self.width, self.height)
    }

    /// The whole-pixel rectangle `(x, y, width, height)` covering the box (rounded outward),
    /// inside a frame of the given size and at least 1×1 when the frame is not empty.
    pub fn pixel_rect(&self, frame_width: u32, frame_height: u32) -> (u32, u32, u32, u32) {
        self.rect().pixel_rect(frame_width, frame_height)
    }
}

/// Settings of a [`Decoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeConfig {
    /// A candidate is kept when its confidence is at least this.
    pub threshold: f32,
    /// A box is suppressed when its IoU with a better box of the same class exceeds this.
    pub iou_threshold: f32,
    /// The most boxes kept per frame (the most confident); 0 keeps all.
    pub max_detections: usize,
    /// Boxes narrower or lower than this (frame pixels, after clipping) are dropped.
    pub min_size: f32,
    /// Only these class ids are kept; empty keeps all.
    pub object_class: Vec<u32>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            threshold: DEFAULT_THRESHOLD,
            iou_threshold: DEFAULT_IOU_THRESHOLD,
            max_detections: DEFAULT_MAX_DETECTIONS,
            min_size: 0.0,
            object_class: Vec::new(),
        }
    }
}

/// What became of one frame's candidates. Each candidate is counted in exactly one of the
/// other fields: `candidates = other_class + dropped_invalid + dropped_small + suppressed +
/// over_limit + kept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeStats {
    /// Candidates whose confidence passed the threshold.
    pub candidates: usize,
    /// Dropped by the `object_class` filter.
    pub other_class: usize,
    /// Dropped for a NaN or infinite value, an invalid class id or no area after clipping.
    pub dropped_invalid: usize,
    /// Dropped for a clipped width or height below `min_size`.
    pub dropped_small: usize,
    /// Suppressed by non-maximum suppression.
    pub suppressed: usize,
    /// Left once `max_detections` boxes were kept (not tested against the kept ones).
    pub over_limit: usize,
    /// Returned.
    pub kept: usize,
}

/// A candidate box in frame pixels, `[x1, y1, x2, y2]`, clipped.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    corners: [f32; 4],
    confidence: f32,
    class_id: u32,
    index: u32,
}

/// One frame's admission of candidates: class filter, mapping, clipping, validity, size.
struct Admit<'a> {
    class_mask: &'a [bool],
    num_classes: Option<usize>,
    inv_scale: [f32; 2],
    offset: [f32; 2],
    limit: [f32; 2],
    min_size: f32,
    stats: DecodeStats,
    out: &'a mut Vec<Candidate>,
}

impl Admit<'_> {
    /// Takes a candidate that passed the threshold: `corners` in input pixels, `class` `None`
    /// for a class id that is not one.
    #[inline]
    fn push(&mut self, corners: [f32; 4], confidence: f32, class: Option<u32>, index: usize) {
        let stats = &mut self.stats;
        stats.candidates += 1;
        let class = class.filter(|&c| self.num_classes.is_none_or(|n| (c as usize) < n));
        if let Some(c) = class
            && !self.class_mask.is_empty()
            && !self.class_mask.get(c as usize).copied().unwrap_or(false)
        {
            stats.other_class += 1;
            return;
        }
        let c: [f32; 4] =
            std::array::from_fn(|k| (corners[k] - self.offset[k & 1]) * self.inv_scale[k & 1]);
        let Some(class_id) =
            class.filter(|_| confidence.is_finite() && c.iter().all(|v| v.is_finite()))
        else {
            stats.dropped_invalid += 1;
            return;
        };
        let c: [f32; 4] = std::array::from_fn(|k| c[k].clamp(0.0, self.limit[k & 1]));
        let (w, h) = (c[2] - c[0], c[3] - c[1]);
        if w <= 0.0 || h <= 0.0 {
            stats.dropped_invalid += 1;
        } else if w < self.min_size || h < self.min_size {
            stats.dropped_small += 1;
        } else {
            let index = index as u32;
            self.out.push(Candidate {
                corners: c,
                confidence,
                class_id,
                index,
            });
        }
    }
}

/// Turns a detector's outputs into detections, frame after frame, reusing its buffers.
#[derive(Debug, Clone)]
pub struct Decoder {
    resolved: ResolvedFormat,
    config: DecodeConfig,
    class_mask: Vec<bool>,
    best_score: Vec<f32>,
    candidates: Vec<Candidate>,
}

impl Decoder {
    pub fn new(resolved: ResolvedFormat, config: DecodeConfig) -> Self {
        let mut decoder = Decoder {
            resolved,
            config: DecodeConfig::default(),
            class_mask: Vec::new(),
            best_score: Vec::new(),
            candidates: Vec::new(),
        };
        decoder.set_config(config);
        decoder
    }

    pub fn resolved(&self) -> ResolvedFormat {
        self.resolved
    }

    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: DecodeConfig) {
        self.class_mask.clear();
        for &c in &config.object_class {
            if self.class_mask.len() <= c as usize {
                self.class_mask.resize(c as usize + 1, false);
            }
            self.class_mask[c as usize] = true;
        }
        self.config = config;
    }

    /// Decodes one frame's outputs into `out` (cleared first), most confident first. The
    /// outputs were made from a frame of `frame_width` × `frame_height` through `mapping`.
    ///
    /// In order: the confidence threshold, the `object_class` filter, the mapping to frame
    /// pixels and clipping, the removal of invalid boxes (NaN or infinite values, no area; for
    /// boxes also a class id that is negative, NaN or, with labels, not below their count) and
    /// of small ones, then, most confident first, greedy class-aware NMS on the clipped boxes
    /// (not for boxes, which come suppressed) until `max_detections` are kept.
    pub fn decode(
        &mut self,
        outputs: &[TensorView<'_>],
        mapping: &Mapping,
        frame_width: u32,
        frame_height: u32,
        out: &mut Vec<Detection>,
    ) -> Result<DecodeStats, DetectError> {
        out.clear();
        let format = self.resolved.format;
        let layout = layout(format, outputs)?;
        for t in outputs {
            if count_of(t.shape) != Some(t.data.len()) {
                let (shape, len) = (t.shape.to_vec(), t.data.len());
                return Err(DetectError::DataLength { shape, len });
            }
        }
        if let Layout::Yolov8(_, classes) | Layout::Yolov5(_, classes) = layout
            && let Some(expected) = self.resolved.num_classes
            && expected != classes
        {
            return Err(DetectError::ClassCount {
                format,
                shape: outputs[0].shape.to_vec(),
                classes,
                expected,
                loaded: true,
            });
        }
        self.candidates.clear();
        let mut admit = Admit {
            class_mask: &self.class_mask,
            num_classes: self.resolved.num_classes,
            inv_scale: [1.0 / mapping.scale_x, 1.0 / mapping.scale_y],
            offset: [mapping.offset_x, mapping.offset_y],
            limit: [frame_width as f32, frame_height as f32],
            min_size: self.config.min_size,
            stats: DecodeStats::default(),
            out: &mut self.candidates,
        };
        let threshold = self.config.threshold;
        let data = outputs[0].data;
        match layout {
            Layout::Yolov8(n, classes) => {
                let best = &mut self.best_score;
                best_scores(data, n, classes, best);
                for (i, &score) in best.iter().enumerate() {
                    if score >= threshold {
                        let cls = class_of(data, n, classes, i, score);
                        let (cx, cy) = (data[i], data[n + i]);
                        let (hw, hh) = (data[2 * n + i] / 2.0, data[3 * n + i] / 2.0);
                        admit.push([cx - hw, cy - hh, cx + hw, cy + hh], score, Some(cls), i);
                    }
                }
            }
            Layout::Yolov5(_, classes) => {
                // Class scores are at most 1, so objectness bounds the confidence.
                let rows = data.chunks_exact(classes + 5).enumerate();
                for (i, row) in rows.filter(|(_, row)| row[4] >= threshold) {
                    let (mut best, mut cls) = (f32::NEG_INFINITY, 0u32);
                    for (c, &v) in row[5..].iter().enumerate() {
                        if v > best {
                            (best, cls) = (v, c as u32);
                        }
                    }
                    let score = row[4] * best;
                    if score >= threshold {
                        let (hw, hh) = (row[2] / 2.0, row[3] / 2.0);
                        let corners = [row[0] - hw, row[1] - hh, row[0] + hw, row[1] + hh];
                        admit.push(corners, score, Some(cls), i);
                    }
                }
            }
            Layout::Boxes(_) => {
                let rows = data
                    .chunks_exact(4)
                    .zip(outputs[1].data)
                    .zip(outputs[2].data);
                for (i, ((b, &score), &id)) in rows.enumerate() {
                    if score >= threshold {
                        let id = id.round();
                        let cls = (id >= 0.0 && id < u32::MAX as f32).then_some(id as u32);
                        admit.push([b[0], b[1], b[2], b[3]], score, cls, i);
                    }
                }
            }
        }
        let mut stats = admit.stats;
        let cands = &mut self.candidates;
        cands.sort_unstable_by(|a, b| {
            let by_confidence = b.confidence.total_cmp(&a.confidence);
            by_confidence.then(a.index.cmp(&b.index))
        });
        let limit = match self.config.max_detections {
            0 => usize::MAX,
            m => m,
        };
        // Greedy NMS in place: the kept boxes gather at the front.
        let mut kept = 0;
        if format == OutputFormat::Boxes {
            kept = cands.len().min(limit);
        } else {
            let iou_threshold = self.config.iou_threshold;
            for i in 0..cands.len() {
                if kept == limit {
                    break;
                }
                let c = cands[i];
                let clash = cands[..kept].iter().any(|k| {
                    k.class_id == c.class_id && iou_corners(k.corners, c.corners) > iou_threshold
                });
                if clash {
                    stats.suppressed += 1;
                } else {
                    cands[kept] = c;
                    kept += 1;
                }
            }
        }
        stats.kept = kept;
        stats.over_limit = cands.len() - kept - stats.suppressed;
        out.extend(cands[..kept].iter().map(|k| {
            let [x1, y1, x2, y2] = k.corners;
            let (class_id, confidence) = (k.class_id, k.confidence);
            Detection {
                x: x1,
                y: y1,
                width: x2 - x1,
                height: y2 - y1,
                class_id,
                confidence,
            }
        }));
        Ok(stats)
    }
}

/// The best class score of each of `n` candidates of a channel-major head (the score of class
/// `c` for candidate `i` at `data[(4 + c) * n + i]`), row after row so that the inner loop runs
/// over contiguous memory.
fn best_scores(data: &[f32], n: usize, classes: usize, best: &mut Vec<f32>) {
    best.clear();
    best.resize(n, f32::NEG_INFINITY);
    for row in data[4 * n..].chunks_exact(n.max(1)).take(classes) {
        for (s, &v) in best.iter_mut().zip(row) {
            *s = if v > *s { v } else { *s };
        }
    }
}

/// The first class of candidate `i` whose score is `best`.
fn class_of(data: &[f32], n: usize, classes: usize, i: usize, best: f32) -> u32 {
    let mut scores = (0..classes).map(|c| data[(4 + c) * n + i]);
    scores.position(|v| v == best).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests;
