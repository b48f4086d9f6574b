//! Model output → result: softmax, top-k and label look-up, and the [`Classification`] value that
//! carries a result everywhere (buffer meta, bus message, JSON, and whatever reads them).

use crate::frame::FrameInfo;
use crate::labels::Labels;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What turns the model's outputs into confidences (`output`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// The outputs are logits of exclusive classes.
    #[default]
    Softmax,
    /// Multi-label: each output is a class's own logit.
    Sigmoid,
    /// The outputs are already probabilities.
    None,
}

crate::names! {
    Activation { Softmax = "softmax", Sigmoid = "sigmoid", None = "none" }
}

/// One class of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub class_id: u32,
    pub label: Arc<str>,
    /// Softmax probability, 0..1.
    pub confidence: f64,
}

/// The result of classifying one frame: the top-k classes, best first (never empty), the frame
/// it was computed on, and how long the model took.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Never empty: only [`Classification::new`] makes one.
    top_k: Vec<Prediction>,
    pub frame: FrameInfo,
    /// Time spent in the model's forward pass.
    pub inference_time: Duration,
}

impl Classification {
    /// A result of the classes `top_k`, best first; None if there is none.
    pub fn new(top_k: Vec<Prediction>, frame: FrameInfo, inference_time: Duration) -> Option<Self> {
        (!top_k.is_empty()).then_some(Classification {
            top_k,
            frame,
            inference_time,
        })
    }

    /// The top-k classes, best first (at least one).
    pub fn top_k(&self) -> &[Prediction] {
        &self.top_k
    }

    /// The best class.
    pub fn top1(&self) -> &Prediction {
        // Never empty: `new` refuses an empty top-k and the field is private.
        &self.top_k[0]
    }
    pub fn label(&self) -> &str {
        &self.top1().label
    }
    pub fn class_id(&self) -> u32 {
        self.top1().class_id
    }
    pub fn confidence(&self) -> f64 {
        self.top1().confidence
    }
}

/// Softmax in place (numerically stable).
pub fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 && sum.is_finite() {
        for v in values.iter_mut() {
            *v /= sum;
        }
    }
}

/// Indices of the `k` largest values, largest first (ties: lower index first). NaN sorts last.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(values.len());
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, &v) in values.iter().enumerate() {
        let v = key(v);
        if best.len() == k && best.last().is_none_or(|&j| key(values[j]) >= v) {
            continue;
        }
        let pos = best.partition_point(|&j| key(values[j]) >= v);
        best.insert(pos, i);
        best.truncate(k);
    }
    best
}

/// Sigmoid in place.
pub fn sigmoid(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = 1.0 / (1.0 + (-*v).exp());
    }
}

/// Turns the model's outputs (consumed: `activation` is applied in place) into the top-`k`
/// predictions at or above `threshold`, best first; empty when even the best is below it.
/// Returns `None` when there are no outputs or `k` is 0.
pub fn classify(
    outputs: &mut [f32],
    k: usize,
    labels: &Labels,
    activation: Activation,
    threshold: f64,
) -> Option<Vec<Prediction>> {
    if outputs.is_empty() || k == 0 {
        return None;
    }
    match activation {
        Activation::Softmax => softmax(outputs),
        Activation::Sigmoid => sigmoid(outputs),
        Activation::None => {}
    }
    Some(
        top_k(outputs, k)
            .into_iter()
            .map(|i| Prediction {
                class_id: i as u32,
                label: labels.name(i),
                confidence: outputs[i] as f64,
            })
            // NaN is never at or above a threshold.
            .take_while(|p| p.confidence >= threshold)
            .collect(),
    )
}

/// Which tracked regions are due for classification (`reclassify-interval`): a track is
/// classified when first seen and again every `interval` frames; between, it carries its newest
/// result. A region whose id is not a track's (0: no id; negative: a detector's box number) is
/// always due.
#[derive(Debug, Default)]
pub struct Reclassify {
    /// Track id → the frame it was last sent to the model.
    last: HashMap<i32, u64>,
}

impl Reclassify {
    /// Whether the track `id` is due at `frame`, recording it as classified there when it is.
    /// A frame before the recorded one (numbering restarted after a flush) is due.
    pub fn due(&mut self, id: i32, frame: u64, interval: u32) -> bool {
        if id <= 0 || interval <= 1 {
            return true;
        }
        let due = self
            .last
            .get(&id)
            .is_none_or(|&at| frame < at || frame - at >= u64::from(interval));
        if due {
            self.last.insert(id, frame);
        }
        due
    }

    /// Forgets tracks not classified within `horizon` frames before `frame` (gone tracks).
    pub fn prune(&mut self, frame: u64, horizon: u64) {
        self.last
            .retain(|_, &mut at| at <= frame && frame - at <= horizon);
    }

    /// The tracks remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut v = [1.0f32, 2.0, 3.0, 1000.0, -1000.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[3] > 0.999 && v[4] == 0.0);
        let mut w = [0.0f32, (2.0f32).ln()];
        softmax(&mut w);
        assert!((w[0] - 1.0 / 3.0).abs() < 1e-6 && (w[1] - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_orders_and_clamps() {
        let v = [0.1, 0.5, f32::NAN, 0.3, 0.5, 0.9];
        assert_eq!(top_k(&v, 3), vec![5, 1, 4]);
        assert_eq!(top_k(&v, 100), vec![5, 1, 4, 3, 0, 2]);
        assert_eq!(top_k(&v, 0), Vec::<usize>::new());
        assert_eq!(top_k(&[], 5), Vec::<usize>::new());
    }

    #[test]
    fn classify_names_classes() {
        let labels = Labels::parse(b"cat\ndog\nbird").unwrap();
        let mut logits = [0.0, 3.0, 1.0, 2.0]; // one more output than labels
        let p = classify(&mut logits, 3, &labels, Activation::Softmax, 0.0).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].class_id, &*p[0].label), (1, "dog"));
        assert_eq!((p[1].class_id, &*p[1].label), (3, "class 3"));
        assert_eq!((p[2].class_id, &*p[2].label), (2, "bird"));
        assert!(p[0].confidence > p[1].confidence && p[1].confidence > p[2].confidence);
        assert!(classify(&mut [], 3, &labels, Activation::Softmax, 0.0).is_none());
        assert!(classify(&mut [1.0], 0, &labels, Activation::Softmax, 0.0).is_none());
    }

    #[test]
    fn sigmoid_scores_each_class_on_its_own() {
        let labels = Labels::parse(b"red\ngreen\nblue").unwrap();
        // Two labels present: sigmoid gives both a high confidence, softmax shares it.
        let logits = [6.0f32, 6.0, -6.0];
        let p = classify(&mut logits.clone(), 3, &labels, Activation::Sigmoid, 0.5).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.confidence > 0.99));
        let p = classify(&mut logits.clone(), 3, &labels, Activation::Softmax, 0.0).unwrap();
        assert!((p[0].confidence - 0.5).abs() < 0.01);
        // None: the outputs are the confidences.
        let p = classify(&mut [0.2, 0.7, 0.1], 1, &labels, Activation::None, 0.0).unwrap();
        assert_eq!((p[0].class_id, p[0].confidence as f32), (1, 0.7));
    }

    #[test]
    fn tracks_are_due_when_first_seen_and_every_interval() {
        let mut r = Reclassify::default();
        let due: Vec<bool> = (0..12).map(|f| r.due(7, f, 5)).collect();
        assert_eq!(
            due,
            [
                true, false, false, false, false, true, false, false, false, false, true, false
            ]
        );
        // Another track on its own schedule; untracked regions (id 0) always.
        assert!(r.due(8, 3, 5) && !r.due(8, 4, 5));
        assert!((0..4).all(|f| r.due(0, f, 5) && r.due(-1, f, 5)));
        // Interval 1: every frame.
        assert!((0..4).all(|f| r.due(9, f, 1)));
        // Numbering restarted (a flush): due again.
        assert!(r.due(7, 2, 5));
        // Gone tracks are forgotten.
        r.prune(100, 50);
        assert!(r.is_empty());
        assert!(r.due(7, 100, 5) && !r.due(7, 101, 5));
    }

    #[test]
    fn threshold_keeps_the_classes_at_or_above_it() {
        let labels = Labels::parse(b"a\nb\nc").unwrap();
        let p = classify(&mut [0.5, 0.3, 0.2], 3, &labels, Activation::None, 0.3).unwrap();
        assert_eq!(p.iter().map(|p| p.class_id).collect::<Vec<_>>(), vec![0, 1]);
        // Best below: an empty result, not None.
        let p = classify(&mut [0.5, 0.3, 0.2], 3, &labels, Activation::None, 0.6).unwrap();
        assert!(p.is_empty());
        let p = classify(&mut [f32::NAN, 0.3], 3, &labels, Activation::None, 0.0).unwrap();
        assert_eq!(p.len(), 1);
    }
}
