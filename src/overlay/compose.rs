//! What `torchoverlay` draws, as an overlay composition: the pieces (captions, outline edges)
//! rendered once and kept while consecutive frames use them, placed by `regions` and `render`.

use super::regions::{self, Rect};
use super::render::{self, Position};
use std::collections::{HashMap, HashSet};

pub const DEFAULT_FONT: &str = "Sans Bold";
pub const DEFAULT_COLOR: u32 = 0xffff_ffff;
pub const DEFAULT_BACKGROUND: u32 = 0xa000_0000;
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.0;

/// `torchoverlay`'s properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub font_desc: String,
    pub position: Position,
    pub show_top_k: bool,
    pub color: u32,
    pub background: u32,
    pub min_confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            font_desc: DEFAULT_FONT.into(),
            position: Position::default(),
            show_top_k: false,
            color: DEFAULT_COLOR,
            background: DEFAULT_BACKGROUND,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }
}

/// One rectangle of a composition: text (a region's caption or the frame's label), or a filled
/// rectangle of the text colour (an edge of a region's outline).
type Piece = regions::Piece<String>;

/// What a frame gets drawn: each piece and the frame position of its top-left corner, in drawing
/// order.
type Layout = Vec<(Piece, i64, i64)>;

/// Rendered pieces and their placed rectangles, kept while consecutive frames use them (what the
/// last frame did not use is dropped), and the composition last made. All of it was made for
/// `settings` and a frame of `width` × `height`.
pub struct Cached {
    settings: Settings,
    width: u32,
    height: u32,
    /// Each piece rendered, as a rectangle at (0, 0).
    pieces: HashMap<Piece, gst_video::VideoOverlayRectangle>,
    /// Rectangles of a piece at a place: the same pixels, moved.
    placed: HashMap<(Piece, i64, i64), gst_video::VideoOverlayRectangle>,
    layout: Layout,
    composition: Option<gst_video::VideoOverlayComposition>,
}

impl Cached {
    pub fn new(settings: &Settings, width: u32, height: u32) -> Self {
        Cached {
            settings: settings.clone(),
            width,
            height,
            pieces: HashMap::new(),
            placed: HashMap::new(),
            layout: Layout::new(),
            composition: None,
        }
    }

    /// Size of `piece`, rendered now unless it is kept from an earlier frame.
    fn size(&mut self, piece: &Piece) -> Result<(i64, i64), String> {
        if let Some(r) = self.pieces.get(piece) {
            let (_, _, w, h) = r.render_rectangle();
            return Ok((w.into(), h.into()));
        }
        let s = &self.settings;
        let image = match piece {
            Piece::Caption(text) => render::render(
                text,
                &s.font_desc,
                render::default_text_px(self.height as usize),
                s.color,
                s.background,
            )?,
            Piece::Fill(w, h) => {
                let dim = |v: i64| usize::try_from(v).map_err(|_| format!("fill size {v}"));
                render::Image::solid(dim(*w)?, dim(*h)?, s.color)
            }
        };
        let size = (image.width as i64, image.height as i64);
        self.pieces.insert(piece.clone(), image.rectangle(0, 0)?);
        Ok(size)
    }

    /// The rectangle of `piece` with its top-left corner at (`x`, `y`): the one kept from an
    /// earlier frame, else a copy of the rendered one (same pixels) moved there.
    fn placed(
        &mut self,
        piece: &Piece,
        x: i64,
        y: i64,
    ) -> Result<gst_video::VideoOverlayRectangle, String> {
        let key = (piece.clone(), x, y);
        if let Some(r) = self.placed.get(&key) {
            return Ok(r.clone());
        }
        let out_of_range = || format!("{piece:?} at {x},{y}: out of range");
        let (rx, ry) = (
            i32::try_from(x).map_err(|_| out_of_range())?,
            i32::try_from(y).map_err(|_| out_of_range())?,
        );
        self.size(piece)?;
        let rendered = self
            .pieces
            .get(piece)
            .ok_or_else(|| format!("{piece:?} not rendered"))?;
        let (_, _, w, h) = rendered.render_rectangle();
        let mut moved = rendered.copy();
        moved.make_mut().set_render_rectangle(rx, ry, w, h);
        self.placed.insert(key, moved.clone());
        Ok(moved)
    }

    /// The composition for `texts`, at the cache's frame size and settings (`None`: nothing of
    /// it is in the frame). Region outlines come first, then region captions, then the frame's
    /// label, each drawn over the ones before. Pieces (text, outline edges) rendered for the
    /// previous frame are reused, and so is the whole composition when nothing changed.
    pub fn composition(
        &mut self,
        texts: &Texts,
    ) -> Result<Option<gst_video::VideoOverlayComposition>, String> {
        let (width, height) = (self.width, self.height);
        let mut layout = regions::layout(
            &texts.regions,
            regions::line_width(height),
            width,
            height,
            |caption| self.size(&Piece::Caption(caption.clone())),
        )?;
        if let Some(text) = &texts.frame {
            let piece = Piece::Caption(text.clone());
            let (tw, th) = self.size(&piece)?;
            let (fw, fh) = (width as usize, height as usize);
            let margin = render::margin(fh);
            let (x, y) = self
                .settings
                .position
                .place(fw, fh, tw as usize, th as usize, margin);
            layout.push((piece, x as i64, y as i64));
        }

        if layout != self.layout || self.composition.is_none() {
            let rectangles = layout
                .iter()
                .map(|(piece, x, y)| self.placed(piece, *x, *y))
                .collect::<Result<Vec<_>, _>>()?;
            self.composition = if rectangles.is_empty() {
                None
            } else {
                Some(
                    gst_video::VideoOverlayComposition::new(rectangles.iter())
                        .map_err(|e| e.to_string())?,
                )
            };
            self.layout = layout;
        }
        self.retain_used();
        Ok(self.composition.clone())
    }

    /// Whether this cache was made for `settings` and a frame of `width` × `height`.
    pub fn fits(&self, settings: &Settings, width: u32, height: u32) -> bool {
        self.settings == *settings && self.width == width && self.height == height
    }

    /// Drops what the last layout does not use.
    fn retain_used(&mut self) {
        let placed: HashSet<_> = self.layout.iter().collect();
        let pieces: HashSet<_> = self.layout.iter().map(|(p, _, _)| p).collect();
        self.pieces.retain(|p, _| pieces.contains(p));
        self.placed.retain(|key, _| placed.contains(key));
    }
}

/// What a frame carries to draw: the frame's label (full-frame result), and each classified
/// region's rectangle and caption, in the buffer's order.
#[derive(Debug, Default)]
pub struct Texts {
    pub frame: Option<String>,
    pub regions: Vec<(Rect, String)>,
}

/// Attaches `composition` to `buffer` as meta; a composition upstream attached already keeps its
/// rectangles, with ours drawn last.
pub fn attach(buffer: &mut gst::BufferRef, composition: &gst_video::VideoOverlayComposition) {
    if let Some(mut meta) = buffer.meta_mut::<gst_video::VideoOverlayCompositionMeta>() {
        let upstream = meta.overlay_owned();
        let rectangles: Vec<_> = upstream.iter().chain(composition.iter()).collect();
        if let Ok(merged) = gst_video::VideoOverlayComposition::new(rectangles.iter()) {
            meta.set_overlay(&merged);
            return;
        }
    }
    gst_video::VideoOverlayCompositionMeta::add(buffer, composition);
}
