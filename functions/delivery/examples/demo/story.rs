//! The eight steps, in order. Each says what happens and why, does it through the real parts,
//! shows the rows that matter and checks every claim; the first claim that does not hold ends
//! the run. The steps are in `steps/`, the stage they play on in `stage.rs`.

use crate::show::Show;
use crate::stage::{Stage, set_up};
use crate::steps::{step_1, step_2, step_3, step_4, step_5, step_6, step_7, step_8};

/// Sets up, then tells the story.
pub async fn run(sweep_via: &str, show: &Show, stage: &mut Stage) -> anyhow::Result<()> {
    show.title("Booking webhooks: the whole delivery story, live, on this machine");
    set_up(sweep_via, show, stage).await?;
    let grace = step_1(show, stage).await?;
    step_2(show, stage, grace).await?;
    step_3(show, stage).await?;
    step_4(show, stage).await?;
    step_5(show, stage).await?;
    step_6(show, stage).await?;
    step_7(show, stage).await?;
    step_8(show, stage).await
}
