//! Class labels: parsing label files, and the lists built into the plugin: the 1000 ImageNet
//! labels (classifiers) and the 80 COCO ones (detectors).

use std::path::Path;
use std::sync::{Arc, LazyLock};

/// The 1000 ImageNet-1k category names in class-id order, as torchvision's weights metadata gives
/// them (`tools/export_model.py` writes the same list next to the exported model).
pub const IMAGENET_LABELS_TXT: &str = include_str!("imagenet_labels.txt");

/// The 80 COCO class names in the order of ultralytics/YOLO class ids.
pub const COCO_LABELS_TXT: &str = include_str!("coco_labels.txt");

// The built-in lists, parsed once: checked-in files that the unit tests parse, so the empty
// fallback is never taken.
static IMAGENET: LazyLock<Labels> = LazyLock::new(|| {
    Labels::parse(IMAGENET_LABELS_TXT.as_bytes()).unwrap_or_else(|_| Labels(Arc::new([])))
});
static COCO: LazyLock<Labels> = LazyLock::new(|| {
    Labels::parse(COCO_LABELS_TXT.as_bytes()).unwrap_or_else(|_| Labels(Arc::new([])))
});

/// An immutable list of class labels, cheap to clone and share between threads; each label is an
/// `Arc<str>` so results can carry it without allocating a string per frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels(Arc<[Arc<str>]>);

/// What is wrong with a labels file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelsError {
    Empty,
    NotUtf8 { line: usize },
    EmptyLine { line: usize },
    EmptyLabel { index: usize },
}

impl std::fmt::Display for LabelsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelsError::Empty => write!(f, "it holds no labels"),
            LabelsError::NotUtf8 { line } => write!(f, "line {line} is not valid UTF-8"),
            LabelsError::EmptyLine { line } => {
                write!(
                    f,
                    "line {line} is empty (one label per line, no blank lines)"
                )
            }
            LabelsError::EmptyLabel { index } => {
                write!(f, "label {index} (counting from 1) is empty")
            }
        }
    }
}

impl std::error::Error for LabelsError {}

impl Labels {
    /// The built-in ImageNet labels.
    pub fn imagenet() -> Self {
        Labels::clone(&IMAGENET)
    }

    /// The built-in COCO labels.
    pub fn coco() -> Self {
        Labels::clone(&COCO)
    }

    /// Parses one label per line. Line ends may be `\n` or `\r\n`; surrounding whitespace is
    /// trimmed; a final newline is optional. Blank lines are errors, since they would shift every
    /// following class id by one (trailing blank lines are ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self, LabelsError> {
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        while lines.last().is_some_and(|l| l.trim_ascii().is_empty()) {
            lines.pop();
        }
        if lines.is_empty() {
            return Err(LabelsError::Empty);
        }
        let mut labels = Vec::with_capacity(lines.len());
        for (i, line) in lines.into_iter().enumerate() {
            let text = std::str::from_utf8(line)
                .map_err(|_| LabelsError::NotUtf8 { line: i + 1 })?
                .trim();
            if text.is_empty() {
                return Err(LabelsError::EmptyLine { line: i + 1 });
            }
            labels.push(Arc::<str>::from(text));
        }
        Ok(Labels(labels.into()))
    }

    /// Labels given as a list of strings (a model config file's `labels` list), under the rules of
    /// [`Labels::parse`]: surrounding whitespace is trimmed, the list must not be empty and no label
    /// may be empty or only whitespace ([`LabelsError::EmptyLabel`] counts from 1).
    pub fn from_list(list: Vec<String>) -> Result<Self, LabelsError> {
        if list.is_empty() {
            return Err(LabelsError::Empty);
        }
        let mut labels = Vec::with_capacity(list.len());
        for (i, label) in list.iter().enumerate() {
            let text = label.trim();
            if text.is_empty() {
                return Err(LabelsError::EmptyLabel { index: i + 1 });
            }
            labels.push(Arc::<str>::from(text));
        }
        Ok(Labels(labels.into()))
    }

    /// Reads and parses a labels file; the error text says what was wrong but not which file (the
    /// caller names the property and path).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Self::parse(&bytes).map_err(|e| e.to_string())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The class ids of `names` (those that are labels), in order.
    pub fn ids(&self, names: &[String]) -> Vec<u32> {
        names
            .iter()
            .filter_map(|n| self.0.iter().position(|l| **l == **n))
            .map(|i| i as u32)
            .collect()
    }

    /// The label of `class_id`, or `None` past the end.
    pub fn get(&self, class_id: usize) -> Option<&Arc<str>> {
        self.0.get(class_id)
    }

    /// The label of `class_id`, or `class N` past the end (a model with more classes than
    /// labels).
    pub fn name(&self, class_id: usize) -> Arc<str> {
        self.get(class_id)
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("class {class_id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_imagenet_has_1000_labels_in_class_order() {
        let l = Labels::imagenet();
        assert_eq!(l.len(), 1000);
        assert_eq!(&**l.get(0).unwrap(), "tench");
        assert_eq!(&**l.get(281).unwrap(), "tabby");
        assert_eq!(&**l.get(285).unwrap(), "Egyptian cat");
        assert_eq!(&**l.get(950).unwrap(), "orange");
        assert_eq!(&**l.get(967).unwrap(), "espresso");
        assert_eq!(&**l.get(999).unwrap(), "toilet tissue");
        assert!(l.get(1000).is_none());
    }

    #[test]
    fn crlf_whitespace_and_trailing_blank_lines() {
        let l = Labels::parse(b"cat\r\n dog \r\nbird\n\n\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(&**l.get(1).unwrap(), "dog");
        assert_eq!(&**l.get(2).unwrap(), "bird");
        assert_eq!(Labels::parse(b"one").unwrap().len(), 1);
    }

    #[test]
    fn class_ids_of_names() {
        let l = Labels::parse(b"person\nbicycle\ncar").unwrap();
        let ids = l.ids(&["car".into(), "dog".into(), "person".into()]);
        assert_eq!(ids, vec![2, 0]);
    }

    #[test]
    fn bad_files() {
        assert_eq!(Labels::parse(b""), Err(LabelsError::Empty));
        assert_eq!(Labels::parse(b"\n \n"), Err(LabelsError::Empty));
        assert_eq!(
            Labels::parse(b"a\n\nb\n"),
            Err(LabelsError::EmptyLine { line: 2 })
        );
        assert_eq!(
            Labels::parse(b"a\nb\xff\xfe\n"),
            Err(LabelsError::NotUtf8 { line: 2 })
        );
        let err = Labels::from_file(Path::new("/nonexistent/labels.txt")).unwrap_err();
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn from_list_keeps_order_trims_and_refuses_empty_labels() {
        let l = Labels::from_list(vec!["red".into(), " green ".into(), "blue".into()]).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(&**l.get(0).unwrap(), "red");
        assert_eq!(&**l.get(1).unwrap(), "green");
        assert_eq!(&**l.get(2).unwrap(), "blue");
        // The same labels as the same text parsed as a file.
        assert_eq!(l, Labels::parse(b"red\n green \nblue\n").unwrap());

        assert_eq!(Labels::from_list(vec![]), Err(LabelsError::Empty));
        assert_eq!(
            Labels::from_list(vec!["a".into(), "".into()]),
            Err(LabelsError::EmptyLabel { index: 2 })
        );
        assert_eq!(
            Labels::from_list(vec![" \t".into(), "b".into()]),
            Err(LabelsError::EmptyLabel { index: 1 })
        );
        assert_eq!(
            LabelsError::EmptyLabel { index: 2 }.to_string(),
            "label 2 (counting from 1) is empty"
        );
    }
}
