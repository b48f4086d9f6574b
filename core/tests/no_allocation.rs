//! What `Preprocessor`'s documentation promises: once built, `run` allocates nothing, in every
//! pixel format, resize mode and with a region (counted by a global allocator, per thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use torchcore::frame::{FrameFormat, PixelFormat, PixelLayout, YuvMatrix};
use torchcore::preprocess::{InputSpec, Preprocessor, ResizeMode};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting this thread's allocations and reallocations.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn run_allocates_nothing() {
    let (w, h) = (64, 48);
    let yuv = |pixels| FrameFormat {
        width: w,
        height: h,
        pixels,
        matrix: YuvMatrix::bt601(false),
    };
    // Each format with its planes' strides and sizes.
    let formats = [
        (FrameFormat::rgb(w, h, PixelLayout::RGB), vec![(w * 3, h)]),
        (FrameFormat::rgb(w, h, PixelLayout::BGRX), vec![(w * 4, h)]),
        (yuv(PixelFormat::Gray), vec![(w, h)]),
        (
            yuv(PixelFormat::I420),
            vec![(w, h), (w / 2, h / 2), (w / 2, h / 2)],
        ),
        (yuv(PixelFormat::NV12), vec![(w, h), (w, h / 2)]),
        (yuv(PixelFormat::YUY2), vec![(w * 2, h)]),
    ];
    for (format, layout) in formats {
        let data: Vec<Vec<u8>> = layout.iter().map(|&(s, r)| vec![100; s * r]).collect();
        let planes: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let strides: Vec<usize> = layout.iter().map(|&(s, _)| s).collect();
        for resize in [
            ResizeMode::Stretch,
            ResizeMode::CenterCrop,
            ResizeMode::Letterbox,
        ] {
            for region in [None, Some((5, 7, 30, 20))] {
                let spec = InputSpec {
                    resize,
                    ..InputSpec::new(32, 32)
                };
                let mut p = Preprocessor::new(format, &spec);
                p.set_region(region);
                let mut out = vec![0.0; p.output_len()];
                p.run(&planes, &strides, &mut out).unwrap();
                let before = allocations();
                for _ in 0..3 {
                    p.run(&planes, &strides, &mut out).unwrap();
                }
                let made = allocations() - before;
                assert_eq!(made, 0, "{format:?} {resize:?} region {region:?}");
            }
        }
    }
}
