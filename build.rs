//! Embeds every `queries/*.sql` file in the binary, so a KPI is added by adding its SQL file and
//! the binary never depends on the working directory.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not compiled in with env!(): a build script binary is reused by other
    // checkouts sharing a target folder, which must embed their own queries.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("queries");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("queries/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// `(file stem, SQL text)` of every file in `queries/`.\npub const SQL_FILES: &[(&str, &str)] = &[\n",
    );
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("utf-8 names");
        writeln!(
            out,
            "    ({stem:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dst = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("queries.rs");
    std::fs::write(dst, out).expect("write queries.rs");
}
