"""Message templates per trigger kind and language, with a fallback chain.

"pt-BR" -> "pt" -> "en". Texts never contain a name: the participant is addressed as
"you", and only the visit name, a local time or a day count are filled in."""

from __future__ import annotations

from collections.abc import Mapping

FALLBACK_LANGUAGE = "en"

# The tone each context calls for: plain reminders, gentle after a miss, upbeat for a
# milestone, direct when a visit is about to start.
TONES: dict[str, str] = {
    "epro-due": "reminder",
    "epro-missed": "supportive",
    "visit-reminder-24h": "reminder",
    "visit-reminder-1h": "direct",
    "visit-missed": "supportive",
    "low-wear": "reminder",
    "device-silent": "supportive",
    "milestone": "celebratory",
    "reconsent-due": "reminder",
}

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "epro-due": "Your questionnaire is ready. It takes a few minutes; thank you for filling it in.",
        "epro-missed": "We missed your last questionnaire. No worries: the next one opens soon, and every answer helps.",
        "visit-reminder-24h": "Reminder: your {visit_name} visit is tomorrow at {visit_time}.",
        "visit-reminder-1h": "Your {visit_name} visit starts at {visit_time}, in about an hour.",
        "visit-missed": "We missed you at your {visit_name} visit. Your study team will help you find a new time.",
        "low-wear": "Your watch has not sent data for a while. Could you put it on when you can?",
        "device-silent": "We have not received data from your device. Please open the study app so it can sync.",
        "milestone": "{days} days in a row of complete diaries. Thank you, that is a real help to the study!",
        "reconsent-due": "The study information has been updated. Please read it in the study app and confirm your consent by {reconsent_by}.",
    },
    "es": {
        "epro-due": "Su cuestionario está listo. Solo tarda unos minutos; gracias por completarlo.",
        "epro-missed": "No recibimos su último cuestionario. No se preocupe: el próximo se abre pronto y cada respuesta ayuda.",
        "visit-reminder-24h": "Recordatorio: su visita {visit_name} es mañana a las {visit_time}.",
        "visit-reminder-1h": "Su visita {visit_name} empieza a las {visit_time}, dentro de una hora.",
        "visit-missed": "No pudimos verle en su visita {visit_name}. Su equipo del estudio le ayudará a encontrar otra hora.",
        "low-wear": "Su reloj no ha enviado datos desde hace un rato. ¿Podría ponérselo cuando pueda?",
        "device-silent": "No hemos recibido datos de su dispositivo. Abra la aplicación del estudio para sincronizarlo.",
        "milestone": "{days} días seguidos con el diario completo. ¡Gracias, es una gran ayuda para el estudio!",
        "reconsent-due": "La información del estudio se ha actualizado. Léala en la aplicación del estudio y confirme su consentimiento antes del {reconsent_by}.",
    },
    "fr": {
        "epro-due": "Votre questionnaire est prêt. Il ne prend que quelques minutes ; merci de le remplir.",
        "epro-missed": "Nous n'avons pas reçu votre dernier questionnaire. Pas d'inquiétude : le prochain ouvre bientôt.",
        "visit-reminder-24h": "Rappel : votre visite {visit_name} a lieu demain à {visit_time}.",
        "visit-reminder-1h": "Votre visite {visit_name} commence à {visit_time}, dans environ une heure.",
        "visit-missed": "Vous n'étiez pas à votre visite {visit_name}. L'équipe de l'étude vous aidera à trouver un autre créneau.",
        "low-wear": "Votre montre n'a pas envoyé de données depuis un moment. Pourriez-vous la porter dès que possible ?",
        "device-silent": "Nous ne recevons plus de données de votre appareil. Ouvrez l'application de l'étude pour le synchroniser.",
        "milestone": "{days} jours d'affilée de journal complet. Merci, c'est une vraie aide pour l'étude !",
        "reconsent-due": "Les informations de l'étude ont été mises à jour. Merci de les lire dans l'application et de confirmer votre consentement avant le {reconsent_by}.",
    },
    "de": {
        "epro-due": "Ihr Fragebogen ist bereit. Er dauert nur wenige Minuten; danke fürs Ausfüllen.",
        "epro-missed": "Ihr letzter Fragebogen fehlt uns. Kein Problem: Der nächste öffnet bald, und jede Antwort hilft.",
        "visit-reminder-24h": "Erinnerung: Ihr Termin {visit_name} ist morgen um {visit_time}.",
        "visit-reminder-1h": "Ihr Termin {visit_name} beginnt um {visit_time}, in etwa einer Stunde.",
        "visit-missed": "Wir haben Sie bei Ihrem Termin {visit_name} vermisst. Ihr Studienteam hilft Ihnen, einen neuen zu finden.",
        "low-wear": "Ihre Uhr hat eine Weile keine Daten gesendet. Könnten Sie sie bei Gelegenheit anlegen?",
        "device-silent": "Von Ihrem Gerät kommen keine Daten an. Bitte öffnen Sie die Studien-App, damit es synchronisiert.",
        "milestone": "{days} Tage in Folge ein vollständiges Tagebuch. Danke, das hilft der Studie sehr!",
        "reconsent-due": "Die Studieninformation wurde aktualisiert. Bitte lesen Sie sie in der Studien-App und bestätigen Sie Ihre Einwilligung bis zum {reconsent_by}.",
    },
    "pt": {
        "epro-due": "O seu questionário está pronto. Leva só alguns minutos; obrigado por preenchê-lo.",
        "epro-missed": "Não recebemos o seu último questionário. Não se preocupe: o próximo abre em breve.",
        "visit-reminder-24h": "Lembrete: a sua consulta {visit_name} é amanhã às {visit_time}.",
        "visit-reminder-1h": "A sua consulta {visit_name} começa às {visit_time}, daqui a cerca de uma hora.",
        "visit-missed": "Sentimos a sua falta na consulta {visit_name}. A equipa do estudo vai ajudar a marcar outra hora.",
        "low-wear": "O seu relógio não envia dados há algum tempo. Pode colocá-lo quando puder?",
        "device-silent": "Não recebemos dados do seu dispositivo. Abra a aplicação do estudo para sincronizar.",
        "milestone": "{days} dias seguidos com o diário completo. Obrigado, ajuda muito o estudo!",
        "reconsent-due": "A informação do estudo foi atualizada. Leia-a na aplicação do estudo e confirme o seu consentimento até {reconsent_by}.",
    },
}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "-"


def resolve_language(requested: str, kind: str) -> str:
    """The first language in requested -> its base -> English that has `kind`."""
    tag = requested.strip().replace("_", "-").lower()
    for candidate in (tag, tag.split("-", 1)[0], FALLBACK_LANGUAGE):
        if kind in TEMPLATES.get(candidate, {}):
            return candidate
    raise KeyError(f"no template for {kind!r} in any language")


def render(kind: str, requested_language: str, variables: Mapping[str, str]) -> tuple[str, str]:
    """(language actually used, text) for `kind` in the participant's language."""
    language = resolve_language(requested_language, kind)
    return language, TEMPLATES[language][kind].format_map(_Blank(variables))
