//! Text for people: durations as the CLI and the status page show them.

/// A short human duration: `850ms`, `12.3s`, `4m05s`, `3h07m`, `2d04h`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 {
        return format!("{}m{:02}s", s / 60, s % 60);
    }
    if s < 86_400 {
        return format!("{}h{:02}m", s / 3600, (s % 3600) / 60);
    }
    format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
}
