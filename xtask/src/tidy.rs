//! placeholder
pub(crate) fn run() -> anyhow::Result<i32> {
    Ok(0)
}
