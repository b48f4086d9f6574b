//! Geometry of `torchoverlay`'s per-region drawing (`torchclassify inference-region=roi-list`),
//! without GStreamer: which ROI metas are drawn, each one's outline as four thin rectangles
//! clipped to the frame, where its caption goes, and the order they are drawn in.

/// A rectangle in frame pixel coordinates; it may reach outside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
}

impl Rect {
    pub fn new(x: i64, y: i64, width: i64, height: i64) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// A ROI meta's rectangle (`x`, `y`, `w`, `h` as `GstVideoRegionOfInterestMeta` has them).
    pub fn from_roi(rect: (u32, u32, u32, u32)) -> Self {
        let (x, y, w, h) = rect;
        Rect::new(x.into(), y.into(), w.into(), h.into())
    }

    pub fn is_empty(&self) -> bool {
        self.width <= 0 || self.height <= 0
    }

    /// The part inside a `frame_width` × `frame_height` frame, or `None` when nothing is.
    pub fn clip(&self, frame_width: u32, frame_height: u32) -> Option<Rect> {
        if self.is_empty() {
            return None;
        }
        let x0 = self.x.max(0);
        let y0 = self.y.max(0);
        let x1 = (self.x + self.width).min(frame_width.into());
        let y1 = (self.y + self.height).min(frame_height.into());
        let clipped = Rect::new(x0, y0, x1 - x0, y1 - y0);
        (!clipped.is_empty()).then_some(clipped)
    }
}

/// The ROI metas drawn as regions, in the buffer's order: `rois` gives each meta's roi type,
/// rectangle and `M` (the meta), `result` its result, if it has one (asked only of the metas
/// that are not the full-frame one). Every one with a result is drawn except the full-frame one
/// (roi type `full_frame_type`), which is the frame's label; one without a result (a detection
/// not classified) is not.
pub fn select<'a, M, T>(
    rois: impl IntoIterator<Item = (&'a str, Rect, M)>,
    full_frame_type: &str,
    mut result: impl FnMut(M) -> Option<T>,
) -> Vec<(Rect, T)> {
    rois.into_iter()
        .filter(|(roi_type, _, _)| *roi_type != full_frame_type)
        .filter_map(|(_, rect, m)| Some((rect, result(m)?)))
        .collect()
}

/// Width of a region's outline: 1/240 of the frame height, at least 2 pixels.
pub fn line_width(frame_height: u32) -> i64 {
    i64::from(frame_height / 240).max(2)
}

/// The outline of `rect`, drawn inside it `line` pixels wide, as up to four non-overlapping
/// rectangles (top and bottom edges full width, left and right between them), each clipped to a
/// `frame_width` × `frame_height` frame: edges outside the frame are dropped, edges partly
/// inside are cut at its border. A box narrower or lower than two lines is filled.
pub fn outline(rect: Rect, line: i64, frame_width: u32, frame_height: u32) -> Vec<Rect> {
    if rect.is_empty() || line <= 0 {
        return Vec::new();
    }
    let Rect {
        x,
        y,
        width: w,
        height: h,
    } = rect;
    let top = line.min(h);
    let bottom = line.min(h - top);
    let left = line.min(w);
    let right = line.min(w - left);
    let side = h - top - bottom;
    [
        Rect::new(x, y, w, top),
        Rect::new(x, y + h - bottom, w, bottom),
        Rect::new(x, y + top, left, side),
        Rect::new(x + w - right, y + top, right, side),
    ]
    .into_iter()
    .filter_map(|r| r.clip(frame_width, frame_height))
    .collect()
}

/// Top-left corner of a region's `text_width` × `text_height` caption: on the visible part of
/// `rect`'s top-left corner, just above it when the frame has room above, else just inside it;
/// then moved left or up as needed to stay inside the frame (a caption wider or higher than the
/// frame starts at its left or top edge). `None` when no part of `rect` is in the frame.
pub fn caption_at(
    rect: Rect,
    text_width: i64,
    text_height: i64,
    frame_width: u32,
    frame_height: u32,
) -> Option<(i64, i64)> {
    let visible = rect.clip(frame_width, frame_height)?;
    let y = if visible.y >= text_height {
        visible.y - text_height
    } else {
        visible.y
    };
    let x = visible.x.min(i64::from(frame_width) - text_width).max(0);
    let y = y.min(i64::from(frame_height) - text_height).max(0);
    Some((x, y))
}

/// One rectangle of the drawing: a caption, or a filled `width` × `height` rectangle (an edge of
/// an outline).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece<T> {
    Caption(T),
    Fill(i64, i64),
}

/// The pieces drawing `regions` (rectangle and caption each) in a `frame_width` × `frame_height`
/// frame, each with the frame position of its top-left corner, in drawing order: every outline
/// (`line` wide), then every caption (so no outline crosses a caption). A region with no part in
/// the frame gets neither. `size` gives a caption's size in pixels (its rendering).
pub fn layout<T: Clone, E>(
    regions: &[(Rect, T)],
    line: i64,
    frame_width: u32,
    frame_height: u32,
    mut size: impl FnMut(&T) -> Result<(i64, i64), E>,
) -> Result<Vec<(Piece<T>, i64, i64)>, E> {
    let mut pieces = Vec::new();
    for (rect, _) in regions {
        for edge in outline(*rect, line, frame_width, frame_height) {
            pieces.push((Piece::Fill(edge.width, edge.height), edge.x, edge.y));
        }
    }
    for (rect, caption) in regions {
        if rect.clip(frame_width, frame_height).is_none() {
            continue;
        }
        let (w, h) = size(caption)?;
        if let Some((x, y)) = caption_at(*rect, w, h, frame_width, frame_height) {
            pieces.push((Piece::Caption(caption.clone()), x, y));
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FW: u32 = 320;
    const FH: u32 = 240;

    #[test]
    fn selects_classified_regions_but_not_the_full_frame_result_nor_unclassified_ones() {
        let r = |x| Rect::new(x, 0, 10, 10);
        let rois = [
            ("classification", r(0), Some("frame")),
            ("car", r(1), Some("car 90%")),
            ("face", r(2), None),
            ("face", r(3), Some("face 80%")),
        ];
        assert_eq!(
            select(rois, "classification", |r| r),
            vec![(r(1), "car 90%"), (r(3), "face 80%")]
        );
        assert!(select([("car", r(1), None::<&str>)], "classification", |r| r).is_empty());
    }

    #[test]
    fn clips_to_the_frame() {
        assert_eq!(
            Rect::new(10, 20, 30, 40).clip(FW, FH),
            Some(Rect::new(10, 20, 30, 40))
        );
        assert_eq!(
            Rect::new(300, 200, 100, 100).clip(FW, FH),
            Some(Rect::new(300, 200, 20, 40))
        );
        assert_eq!(
            Rect::new(-5, -5, 10, 10).clip(FW, FH),
            Some(Rect::new(0, 0, 5, 5))
        );
        assert_eq!(Rect::new(320, 0, 10, 10).clip(FW, FH), None);
        assert_eq!(Rect::new(0, 0, 0, 10).clip(FW, FH), None);
        // The largest rectangle a ROI meta can hold.
        let huge = Rect::from_roi((u32::MAX, u32::MAX, u32::MAX, u32::MAX));
        assert_eq!(huge.clip(FW, FH), None);
        let wide = Rect::from_roi((0, 0, u32::MAX, u32::MAX));
        assert_eq!(wide.clip(FW, FH), Some(Rect::new(0, 0, 320, 240)));
    }

    #[test]
    fn line_width_follows_the_frame_height() {
        assert_eq!(line_width(240), 2);
        assert_eq!(line_width(480), 2);
        assert_eq!(line_width(719), 2);
        assert_eq!(line_width(720), 3);
        assert_eq!(line_width(1080), 4);
        assert_eq!(line_width(2160), 9);
        assert_eq!(line_width(0), 2);
    }

    /// Every pixel of `pieces`, counting overlaps.
    fn pixels(pieces: &[Rect]) -> Vec<(i64, i64)> {
        pieces
            .iter()
            .flat_map(|r| {
                (r.y..r.y + r.height).flat_map(move |y| (r.x..r.x + r.width).map(move |x| (x, y)))
            })
            .collect()
    }

    #[test]
    fn an_outline_is_four_thin_edges_inside_the_box() {
        let edges = outline(Rect::new(40, 60, 100, 50), 2, FW, FH);
        assert_eq!(
            edges,
            vec![
                Rect::new(40, 60, 100, 2),
                Rect::new(40, 108, 100, 2),
                Rect::new(40, 62, 2, 46),
                Rect::new(138, 62, 2, 46),
            ]
        );
        // Exactly the box's border pixels, each once.
        let mut drawn = pixels(&edges);
        drawn.sort();
        let mut border: Vec<_> = (60..110)
            .flat_map(|y| (40..140).map(move |x| (x, y)))
            .filter(|&(x, y)| !(42..138).contains(&x) || !(62..108).contains(&y))
            .collect();
        border.sort();
        assert_eq!(drawn, border);
    }

    #[test]
    fn an_outline_partly_outside_the_frame_is_cut_at_its_border() {
        // Reaches past the right and bottom edges: those two sides are not in the frame.
        let edges = outline(Rect::new(250, 200, 200, 100), 2, FW, FH);
        assert_eq!(
            edges,
            vec![Rect::new(250, 200, 70, 2), Rect::new(250, 202, 2, 38)]
        );
        // Reaching past the left and top (a rectangle from elsewhere than a ROI meta).
        let edges = outline(Rect::new(-10, -10, 30, 30), 2, FW, FH);
        assert_eq!(
            edges,
            vec![Rect::new(0, 18, 20, 2), Rect::new(18, 0, 2, 18)]
        );
        assert!(outline(Rect::new(400, 10, 50, 50), 2, FW, FH).is_empty());
        assert!(outline(Rect::new(10, 10, 0, 50), 2, FW, FH).is_empty());
    }

    #[test]
    fn a_box_smaller_than_two_lines_is_filled_without_overlaps() {
        for (w, h) in [(1, 1), (3, 3), (4, 1), (1, 7), (5, 4)] {
            let edges = outline(Rect::new(10, 10, w, h), 2, FW, FH);
            let mut drawn = pixels(&edges);
            let n = drawn.len();
            drawn.sort();
            drawn.dedup();
            assert_eq!(drawn.len(), n, "{w}x{h}: overlapping edges {edges:?}");
            assert_eq!(n as i64, w * h, "{w}x{h}: {edges:?}");
        }
    }

    #[test]
    fn a_caption_goes_above_the_box_when_there_is_room_else_inside() {
        // Room above: its bottom touches the box's top, its left the box's left.
        assert_eq!(
            caption_at(Rect::new(40, 60, 100, 50), 80, 20, FW, FH),
            Some((40, 40))
        );
        assert_eq!(
            caption_at(Rect::new(40, 20, 100, 50), 80, 20, FW, FH),
            Some((40, 0))
        );
        // No room: just inside the box's top-left corner.
        assert_eq!(
            caption_at(Rect::new(40, 19, 100, 50), 80, 20, FW, FH),
            Some((40, 19))
        );
        assert_eq!(
            caption_at(Rect::new(40, 0, 100, 50), 80, 20, FW, FH),
            Some((40, 0))
        );
        // Clipped box: at its visible top-left corner.
        assert_eq!(
            caption_at(Rect::new(-30, -30, 100, 50), 80, 20, FW, FH),
            Some((0, 0))
        );
    }

    #[test]
    fn a_caption_stays_inside_the_frame() {
        // Near the right edge: moved left.
        assert_eq!(
            caption_at(Rect::new(300, 100, 100, 50), 80, 20, FW, FH),
            Some((240, 80))
        );
        // No room above, and inside it would cross the bottom edge: moved up.
        assert_eq!(
            caption_at(Rect::new(10, 10, 50, 50), 80, 20, FW, 25),
            Some((10, 5))
        );
        assert_eq!(
            caption_at(Rect::new(10, 5, 50, 10), 80, 20, FW, 20),
            Some((10, 0))
        );
        // Wider than the frame: at its left edge.
        assert_eq!(
            caption_at(Rect::new(100, 100, 10, 10), 400, 20, FW, FH),
            Some((0, 80))
        );
        // Nothing of the box in the frame: no caption.
        assert_eq!(
            caption_at(Rect::new(320, 100, 10, 10), 80, 20, FW, FH),
            None
        );
    }

    #[test]
    fn lays_out_outlines_then_captions_and_skips_regions_outside_the_frame() {
        let regions = [
            (Rect::new(40, 60, 100, 50), "car 90%"),
            (Rect::new(400, 60, 100, 50), "outside 50%"),
            (Rect::new(200, 0, 60, 40), "face 80%"),
        ];
        let mut sized = Vec::new();
        let pieces = layout(&regions, 2, FW, FH, |c: &&str| {
            sized.push(*c);
            Ok::<_, ()>((c.len() as i64 * 10, 20))
        })
        .unwrap();
        // Only the captions drawn are rendered.
        assert_eq!(sized, ["car 90%", "face 80%"]);
        let fill = |w, h, x, y| (Piece::Fill(w, h), x, y);
        assert_eq!(
            pieces,
            vec![
                fill(100, 2, 40, 60),
                fill(100, 2, 40, 108),
                fill(2, 46, 40, 62),
                fill(2, 46, 138, 62),
                fill(60, 2, 200, 0),
                fill(60, 2, 200, 38),
                fill(2, 36, 200, 2),
                fill(2, 36, 258, 2),
                (Piece::Caption("car 90%"), 40, 40),
                (Piece::Caption("face 80%"), 200, 0),
            ]
        );
        // A caption that cannot be rendered fails the layout.
        assert_eq!(
            layout(&regions, 2, FW, FH, |_| Err("no font")),
            Err("no font")
        );
        assert_eq!(
            layout::<&str, ()>(&[], 2, FW, FH, |_| Ok((1, 1))),
            Ok(vec![])
        );
    }
}
