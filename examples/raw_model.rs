//! The limit for the benchmark: the exported model's forward in a tight loop, straight through
//! tch on one thread (which loads and runs it), on a prepared input.
//!
//!     raw_model MODEL ENGINE THREADS ITERATIONS [SIZE]
//!
//! Prints one JSON line: {"engine", "threads", "iterations", "model_ms" (median), "mean_ms"}.

use gsttorch::model::{current_engine, route_libtorch_warnings, set_engine};
use gsttorch::torchcore::settings::Engine;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: raw_model MODEL ENGINE THREADS ITERATIONS [SIZE]".into());
    }
    let engine = match args[2].as_str() {
        "auto" => Engine::Auto,
        "x86" => Engine::X86,
        "fbgemm" => Engine::Fbgemm,
        "qnnpack" => Engine::Qnnpack,
        other => return Err(format!("unknown engine {other}").into()),
    };
    let threads: i32 = args[3].parse()?;
    let iterations: usize = args[4].parse()?;
    let size: i64 = args.get(5).map_or(Ok(224), |s| s.parse())?;
    // As the element does: threads and engine before the model is loaded, on the thread that
    // runs it.
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    set_engine(engine)?;
    route_libtorch_warnings();
    let _guard = tch::no_grad_guard();
    let model = tch::CModule::load(&args[1])?;
    let input = tch::Tensor::randn([1, 3, size, size], (tch::Kind::Float, tch::Device::Cpu));
    for _ in 0..10 {
        let _ = model.forward_ts(&[&input])?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let out = model.forward_ts(&[&input])?;
        let _ = out.softmax(-1, tch::Kind::Float);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"engine\": \"{}\", \"threads\": {}, \"iterations\": {iterations}, \"model_ms\": {:.4}, \"mean_ms\": {mean:.4}}}",
        current_engine(),
        tch::get_num_threads(),
        times[times.len() / 2]
    );
    Ok(())
}
