//! Moves a stack's state between backends: to where the stack file's `[state]` table now says,
//! from where it was.

use std::time::Duration;

use super::{Context, OpsError, Result};
use crate::model::StateLocation;

pub struct MigrateOptions {
    /// `local`, or `s3://bucket/key`.
    pub from: String,
    pub lock_timeout: Duration,
}

pub async fn migrate(ctx: &Context, opts: MigrateOptions) -> Result<()> {
    let destination = super::configured_backend(ctx, None).await?;
    let from = parse_location(&opts.from)?;
    let source = super::backend(ctx, &from, None).await?;
    if source.describe() == destination.describe() {
        return Err(OpsError::Usage(format!(
            "the stack file already keeps the state at {}: first change [state] in {} to where it should go",
            destination.describe(),
            ctx.workspace.shown_stack_file()
        )));
    }
    let source_lock = source.lock("state migrate", opts.lock_timeout).await?;
    let destination_lock = match destination.lock("state migrate", opts.lock_timeout).await {
        Ok(lock) => lock,
        Err(e) => {
            source_lock.release().await;
            return Err(e.into());
        }
    };
    let result = async {
        let Some(mut state) = source.load().await? else {
            return Err(OpsError::Usage(format!("there is no state at {} to migrate", source.describe())));
        };
        if let Some(existing) = destination.load().await? {
            return Err(OpsError::Usage(format!(
                "{} already holds a state (lineage {}, serial {}); it was not touched. Remove it first if it is \
                 an old copy.",
                destination.describe(),
                existing.lineage,
                existing.serial
            )));
        }
        destination.save(&mut state).await?;
        println!(
            "Moved the state of stack {} (lineage {}, {} objects) from {} to {}.",
            state.stack,
            state.lineage,
            state.resources.len(),
            source.describe(),
            destination.describe()
        );
        if let StateLocation::Local = from {
            let old = ctx.workspace.state_dir().join(format!("{}.json", state.stack));
            let kept = old.with_extension("json.migrated");
            std::fs::rename(&old, &kept)
                .map_err(|source| OpsError::Io { what: "cannot set aside", path: old.display().to_string(), source })?;
            println!("The local copy is kept as {}; delete it once you are satisfied.", kept.display());
        } else {
            println!("The copy at {} is left in place; delete it once you are satisfied.", source.describe());
        }
        Ok(())
    }
    .await;
    destination_lock.release().await;
    source_lock.release().await;
    result
}

fn parse_location(s: &str) -> Result<StateLocation> {
    if s == "local" {
        return Ok(StateLocation::Local);
    }
    let rest = s
        .strip_prefix("s3://")
        .ok_or_else(|| OpsError::Usage(format!("--from {s:?}: use local or s3://BUCKET/KEY")))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(StateLocation::S3 {
            bucket: bucket.into(),
            key: key.into(),
            region: None,
        }),
        _ => Err(OpsError::Usage(format!(
            "--from {s:?}: use s3://BUCKET/KEY"
        ))),
    }
}
