//! "Run this batch": the [`Forward`] trait a model implements for the model thread
//! ([`crate::batch`]), with the tensors it returns and its typed error.

/// One output tensor: its shape and values (row-major).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// How a model returned its tensors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Packing {
    /// One tensor.
    #[default]
    Tensor,
    /// A tuple of tensors.
    Tuple,
    /// A list of tensors.
    List,
    /// Something else, no tensors ("a dict", "None", "a string").
    Other(&'static str),
}

impl Packing {
    /// As error messages say it ("a tensor", "a tuple", "a list").
    pub fn describe(self) -> &'static str {
        match self {
            Packing::Tensor => "a tensor",
            Packing::Tuple => "a tuple",
            Packing::List => "a list",
            Packing::Other(kind) => kind,
        }
    }
}

/// What a forward returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub packing: Packing,
    pub tensors: Vec<Tensor>,
}

impl Outputs {
    /// The tensors' shapes.
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        self.tensors.iter().map(|t| t.shape.clone()).collect()
    }

    /// The first `n` values of the first tensor: a classifier's scores (mutable: its softmax or
    /// sigmoid runs in place).
    pub fn scores_mut(&mut self, n: usize) -> Option<&mut [f32]> {
        self.tensors.first_mut().and_then(|t| t.data.get_mut(..n))
    }
}

/// Why a forward gave no outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardError {
    /// The model raised an error (its text).
    Failed(String),
    /// The forward panicked.
    Panicked,
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Failed(text) => f.write_str(text),
            ForwardError::Panicked => f.write_str("the model's forward panicked"),
        }
    }
}

impl std::error::Error for ForwardError {}

/// "Run this batch": what the model thread needs of a model. Made on the model thread by the
/// maker given to [`crate::batch::Model::start`], and used only there.
pub trait Forward {
    /// Runs the `shape[0]` images of `input` (`[n, 3, H, W]`, row-major) and writes what the model
    /// returned into `outputs` (reusing its tensors' memory): its tensors, or no tensors and
    /// [`Packing::Other`] when it returned something else.
    fn forward(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        outputs: &mut Outputs,
    ) -> Result<(), ForwardError>;
}

/// libtorch's error messages carry a C++ stack trace after the first lines; what a user can
/// read: the first three lines, and the exception's own line (`RuntimeError: …`) where a
/// TorchScript traceback pushed it further down.
pub fn message_text(text: &str) -> String {
    let text = text
        .split("Exception raised from")
        .next()
        .unwrap_or(text)
        .trim();
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut lines: Vec<&str> = all.iter().take(3).copied().collect();
    let is_exception = |l: &&str| {
        l.split_once(':')
            .is_some_and(|(name, _)| name.ends_with("Error") && !name.contains(' '))
    };
    if !lines.iter().any(is_exception)
        && let Some(last) = all.iter().skip(3).copied().rfind(is_exception)
    {
        lines.push(last);
    }
    if lines.is_empty() {
        lines.push("unknown libtorch error");
    }
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::message_text;

    #[test]
    fn a_torchscript_traceback_keeps_its_exception_line() {
        let text = "The following operation failed in the TorchScript interpreter.\n\
                    Traceback of TorchScript (most recent call last):\n  \
                    File \"code/__torch__.py\", line 9, in forward\n    \
                    x = torch.flatten(input)\n    \
                    return torch.linear(x, w)\n\
                    RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x10 and 20x10)\n";
        let m = message_text(text);
        assert!(m.starts_with("The following operation failed"), "{m}");
        assert!(
            m.ends_with("RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x10 and 20x10)"),
            "{m}"
        );
    }

    #[test]
    fn a_short_message_stays_and_the_stack_trace_goes() {
        assert_eq!(
            message_text("open file failed\nException raised from foo at bar.cpp:12\nframe #0"),
            "open file failed"
        );
        assert_eq!(message_text(""), "unknown libtorch error");
    }
}
