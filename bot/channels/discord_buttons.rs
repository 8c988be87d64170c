//! The satisfaction survey on Discord (`desk/survey.rs`): a question goes out with button
//! components (the scores, five to a row, then the button that declines); a press comes back
//! on the gateway as an INTERACTION_CREATE (a component interaction), answered to the desk
//! as the presser's own identity and acknowledged with the interaction callback: the buttons
//! are taken off the message when the answer counted, the press is only acknowledged when it
//! did not (Discord shows "interaction failed" when no callback comes within 3 s).

use serenity::all::{
    ButtonStyle, ComponentInteraction, CreateActionRow, CreateButton, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateMessage, Interaction,
};

use super::Discord;
use crate::desk::survey::{button_data, parse_button, SurveyAnswer};
use crate::intake::Pressed;
use crate::message::{ChannelKind, Identity, Outbound};

/// Buttons per action row, as Discord allows.
const PER_ROW: usize = 5;

/// `builder` with the answer buttons of `message`, when it asks a survey question.
pub(super) fn with_buttons(builder: CreateMessage, message: &Outbound) -> CreateMessage {
    let Some(ask) = &message.survey else {
        return builder;
    };
    let id = &message.conversation_id;
    let scores: Vec<CreateButton> = ask
        .survey
        .scores()
        .map(|n| {
            CreateButton::new(button_data(id, ask.survey, SurveyAnswer::Score(n)))
                .label(n.to_string())
                .style(ButtonStyle::Primary)
        })
        .collect();
    let mut rows: Vec<CreateActionRow> = scores
        .chunks(PER_ROW)
        .map(|row| CreateActionRow::Buttons(row.to_vec()))
        .collect();
    rows.push(CreateActionRow::Buttons(vec![CreateButton::new(
        button_data(id, ask.survey, SurveyAnswer::Skip),
    )
    .label(ask.skip_label.clone())
    .style(ButtonStyle::Secondary)]));
    builder.components(rows)
}

/// An interaction from the gateway: a press on a survey button is answered to the desk
/// (which checks that the presser is the conversation's customer and the question their
/// open one) and acknowledged; other interactions are not ours.
pub(super) async fn on_interaction(discord: &Discord, interaction: Interaction) {
    let Interaction::Component(press) = interaction else {
        return;
    };
    let counted = answer(discord, &press).await;
    let response = match counted {
        true => CreateInteractionResponse::UpdateMessage(
            CreateInteractionResponseMessage::new().components(Vec::new()),
        ),
        false => CreateInteractionResponse::Acknowledge,
    };
    if let Err(e) = press.create_response(&*discord.http, response).await {
        tracing::warn!(error = %super::describe(&e), "cannot acknowledge a Discord button press");
    }
}

/// Whether the press counted as its presser's survey answer.
async fn answer(discord: &Discord, press: &ComponentInteraction) -> bool {
    let presser = Identity::new(ChannelKind::Discord, &press.user.id.get().to_string());
    let Some((conversation, survey, answer)) = parse_button(&press.data.custom_id) else {
        tracing::info!(identity = %presser, "Discord button press with an unknown id ignored");
        return false;
    };
    match discord
        .intake
        .answer_press(&presser, &conversation, survey, answer)
        .await
    {
        Ok(pressed) => pressed == Pressed::Counted,
        Err(e) => {
            // Discord does not send a press again: the customer may press once more.
            tracing::warn!(error = %e, "a Discord survey answer could not be stored");
            false
        }
    }
}
