//! Writing a region's batches: the events sorted by date and numbered per year, the
//! deliberate faults, duplicates and conflicts drawn from a stream of their own, and one file
//! per calendar year of the period (the first also holds the years before) written under a
//! temporary name and renamed into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::Datelike;
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{Ev, FAULT_CONFLICT};
use super::render::{Renderer, Row, Sink};
use super::sim::{RegionData, from_date, to_date};
use super::{
    CONFLICT_SHARE, GenerateError, GenerateOptions, GenerateSummary, OutputFormat, faults,
};
use crate::reference;

/// Sorts a region's events, gives them ids, marks the deliberate faults, duplicates and
/// conflicts, and writes one file per calendar year.
pub(super) fn write_region(
    opts: &GenerateOptions,
    region_index: usize,
    rc: &'static str,
    mut data: RegionData,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let mut events = std::mem::take(&mut data.events);
    // Stable: events of the same date and time keep the simulation's (deterministic) order.
    events.sort_by_key(Ev::sort_key);
    let year_of = |e: &Ev| to_date(e.date).year();
    let mut year = i32::MIN;
    let mut n = 0u32;
    for ev in &mut events {
        let y = year_of(ev);
        if y != year {
            year = y;
            n = 0;
        }
        n += 1;
        ev.seq = n;
    }

    // A separate stream: faults and re-sends never change what the simulation produced.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(1_000 + region_index as u64);
    let last_year = opts.end.year();
    // The opening stock's earlier events travel in the first year's batch.
    let first_year = opts.start.year();
    let file_year = |e: &Ev| year_of(e).max(first_year);
    let mut extras: Vec<(i32, Ev)> = Vec::new();
    for ev in &mut events {
        let u: f64 = rng.random();
        if u < opts.error_rate {
            summary.invalid_rows += 1;
            if rng.random_bool(CONFLICT_SHARE) {
                // The original stays valid; a later copy reuses its id with other content.
                let mut copy = *ev;
                copy.fault = FAULT_CONFLICT;
                extras.push((rng.random_range(file_year(ev)..=last_year), copy));
            } else {
                ev.fault = faults::choose(&mut rng, ev);
            }
        } else if u < opts.error_rate + opts.duplicate_rate {
            summary.duplicate_rows += 1;
            extras.push((rng.random_range(file_year(ev)..=last_year), *ev));
        }
    }
    // Re-sent rows close the file they are re-sent in, in the order they were picked.
    extras.sort_by_key(|(y, _)| *y);

    let start = from_date(opts.start);
    let end = from_date(opts.end);
    let mut renderer = Renderer::new(rc, &data, reference::provinces(), start, end);
    let mut row = Row::new();
    let (mut i, mut x) = (0usize, 0usize);
    for year in opts.start.year()..=last_year {
        let lo = i;
        while i < events.len() && file_year(&events[i]) == year {
            i += 1;
        }
        let xlo = x;
        while x < extras.len() && extras[x].0 == year {
            x += 1;
        }
        if lo == i && xlo == x {
            continue;
        }
        let mut name = format!("events-{rc}-{year}.{}", opts.format.extension());
        if opts.gzip {
            name.push_str(".gz");
        }
        let path = opts.out.join(name);
        let rows = events[lo..i]
            .iter()
            .chain(extras[xlo..x].iter().map(|(_, e)| e));
        write_file(&path, opts, rows, &mut renderer, &mut row)?;
        summary.events += (i - lo + x - xlo) as u64;
        summary.files.push(path);
    }
    Ok(())
}

fn write_rows<'e, W: Write>(
    mut sink: Sink<W>,
    rows: impl Iterator<Item = &'e Ev>,
    renderer: &mut Renderer<'_>,
    row: &mut Row,
) -> io::Result<W> {
    for ev in rows {
        renderer.render(ev, row);
        sink.write(row)?;
    }
    sink.finish()
}

fn open_sink<W: Write>(format: OutputFormat, w: W) -> io::Result<Sink<W>> {
    match format {
        OutputFormat::Csv => Sink::csv(w),
        OutputFormat::Jsonl => Ok(Sink::jsonl(w)),
    }
}

/// Writes one batch under a hidden temporary name and renames it into place, so that an
/// ingest watching the folder never picks up half a file.
fn write_file<'e>(
    path: &Path,
    opts: &GenerateOptions,
    rows: impl Iterator<Item = &'e Ev>,
    renderer: &mut Renderer<'_>,
    row: &mut Row,
) -> Result<(), GenerateError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.partial"));
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        const BUF: usize = 1 << 16;
        if opts.gzip {
            let gz = GzEncoder::new(BufWriter::with_capacity(BUF, file), Compression::default());
            let w = BufWriter::with_capacity(BUF, gz);
            let w = write_rows(open_sink(opts.format, w)?, rows, renderer, row)?;
            let gz = w.into_inner().map_err(|e| e.into_error())?;
            gz.finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
        } else {
            let w = BufWriter::with_capacity(BUF, file);
            let w = write_rows(open_sink(opts.format, w)?, rows, renderer, row)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        }
    })()
    .and_then(|()| fs::rename(&tmp, path));
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        GenerateError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
