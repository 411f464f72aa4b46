//! The IR's JSON format (`xenon-graph` v1, what `xenon dump --stage graph --format json`
//! writes): read, re-checked by the shape rules, written back and read again.

use crate::feedback::outcome;
use xenon_compiler::ir::Graph;

/// A graph's JSON: `Graph::from_json`, then the documented round trip
/// `from_json(to_json(g))` (compared as written) and the text dump.
pub fn graph_json(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let g = Graph::from_json(&text);
    outcome("graph", &g);
    let Ok(g) = g else { return };
    let json = g.to_json();
    let again = Graph::from_json(&json)
        .unwrap_or_else(|e| panic!("to_json wrote a graph from_json rejects: {e}\n{json}"));
    // Compared as text: a NaN constant is not equal to itself.
    assert_eq!(
        again.to_json(),
        json,
        "to_json → from_json → to_json changed the graph"
    );
    let _ = g.to_string();
}
