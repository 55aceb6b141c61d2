// French and English, chosen by the network's locale (Tenant.locale).
// Each entry: [français, English].

const M = {
  app: ["Console du réseau", "Network console"],
  skip: ["Aller au contenu", "Skip to content"],
  signIn: ["Se connecter", "Sign in"],
  signOut: ["Se déconnecter", "Sign out"],
  signingIn: ["Connexion…", "Signing in…"],
  tenant: ["Réseau (identifiant)", "Network (slug)"],
  email: ["Adresse e-mail", "E-mail address"],
  password: ["Mot de passe", "Password"],
  forgotPassword: ["Mot de passe oublié ?", "Forgotten password?"],
  resetIntro: [
    "Indiquez le réseau et votre adresse e-mail : si un compte y correspond, un lien pour choisir un nouveau mot de passe vous est envoyé.",
    "Give the network and your e-mail address: if an account matches, a link to choose a new password is mailed to you.",
  ],
  sendResetLink: ["Envoyer le lien", "Send the link"],
  resetSent: [
    "C'est noté : si un compte correspond à cette adresse dans ce réseau, un e-mail arrive avec le lien (valable une heure).",
    "Noted: if an account matches this address in this network, an e-mail is on its way with the link (valid one hour).",
  ],
  backToSignIn: ["Retour à la connexion", "Back to sign-in"],
  signInIntro: [
    "La console de ceux qui font vivre un réseau : admissions, pôles, rencontres, résultats.",
    "The console for the people who run a network: admissions, hubs, meetups, results.",
  ],
  loading: ["Chargement…", "Loading…"],
  retry: ["Réessayer", "Retry"],
  save: ["Enregistrer", "Save"],
  cancel: ["Annuler", "Cancel"],
  close: ["Fermer", "Close"],
  none: ["Aucun", "None"],
  nothing: ["Rien pour l'instant.", "Nothing yet."],
  done: ["C'est fait.", "Done."],
  yes: ["Oui", "Yes"],
  no: ["Non", "No"],
  menu: ["Sections", "Sections"],
  hub: ["Pôle", "Hub"],
  chooseHub: ["Choisir un pôle", "Choose a hub"],
  adminOnlyPage: [
    "Réservé aux administrateurs du réseau : cette page n'est pas accessible avec votre compte.",
    "For the network's admins only: this page is not available to your account.",
  ],
  signedInAs: ["Connecté·e : ", "Signed in: "],
  networkAdmin: ["administrateur du réseau", "network admin"],
  member: ["membre", "member"],
  memberLabel: ["Membre", "Member"],
  reason: ["Raison", "Reason"],
  // navigation
  members: ["Membres", "Members"],
  admissions: ["Admissions", "Admissions"],
  hubs: ["Pôles", "Hubs"],
  roster: ["Animation", "Facilitation"],
  meetups: ["Rencontres", "Meetups"],
  results: ["Recommandations et résultats", "Referrals and results"],
  resultsShort: ["Résultats", "Results"],
  data: ["Données", "Data"],
  // members
  directory: ["Annuaire", "Directory"],
  search: ["Rechercher (activité, offre, besoin)", "Search (activity, offer, need)"],
  offers: ["J'offre", "I offer"],
  seeks: ["Je cherche", "I seek"],
  availableFor: ["Disponible pour", "Available for"],
  makeAdmin: ["Nommer administrateur", "Make admin"],
  removeAdmin: ["Retirer l'administration", "Remove admin"],
  admins: ["Administrateurs du réseau", "Network admins"],
  invitations: ["Invitations", "Invitations"],
  invite: ["Inviter", "Invite"],
  inviteAsAdmin: ["comme administrateur", "as an admin"],
  invitationSent: ["Invitation envoyée.", "Invitation sent."],
  revoke: ["Retirer", "Revoke"],
  status: ["État", "Status"],
  expires: ["Expire", "Expires"],
  invitedBy: ["Invité par", "Invited by"],
  inv_pending: ["en attente", "pending"],
  inv_accepted: ["acceptée", "accepted"],
  inv_revoked: ["retirée", "revoked"],
  inv_expired: ["expirée", "expired"],
  membersCount: ["membres", "members"],
  more: ["Voir plus", "Show more"],
  // admissions
  pending: ["Candidatures en cours", "Pending nominations"],
  candidate: ["Candidat·e", "Candidate"],
  sponsor: ["Parrain", "Godparent"],
  note: ["Mot du parrain", "Sponsor's note"],
  objections: ["Objections", "Objections"],
  noObjection: ["Aucune objection.", "No objection."],
  objectionsForAdmins: [
    "Leur contenu n'est montré qu'aux administrateurs du pôle.",
    "Their content is shown to the hub's admins only.",
  ],
  windowCloses: ["Fenêtre d'objection : ", "Objection window: "],
  windowClosed: ["fenêtre close", "window closed"],
  // a countdown: "il reste 6 j 23 h" / "6 d 23 h left" (no agreement to get wrong)
  leftBefore: ["il reste ", ""],
  left: ["", " left"],
  admit: ["Admettre", "Admit"],
  reject: ["Refuser", "Reject"],
  rejectReason: ["Raison du refus", "Why the candidate is refused"],
  exceptionReason: ["Raison de l'exception", "Reason for the exception"],
  exceptionHint: [
    "La règle « un par métier » s'applique : admettre quand même, avec une raison.",
    "The one-per-profession rule stands: admit all the same, with a reason.",
  ],
  admitDespiteObjections: [
    "Cette candidature a reçu des objections. L'admettre quand même ?",
    "This nomination has objections. Admit the candidate all the same?",
  ],
  confirmAdmit: ["Confirmer l'admission", "Confirm the admission"],
  admitWithException: ["Admettre par exception", "Admit as an exception"],
  admitted: ["Admis·e.", "Admitted."],
  rejected: ["Refusé·e.", "Rejected."],
  invitedCandidate: ["invité·e par e-mail (pas encore inscrit·e)", "invited by e-mail (not joined yet)"],
  st_INVITED: ["invité·e", "invited"],
  awaitingCandidate: [
    "La personne invitée n'a pas encore rejoint le réseau : elle pourra être admise ensuite.",
    "The invited person has not joined the network yet: they can be admitted then.",
  ],
  st_OPEN: ["fenêtre ouverte", "window open"],
  st_AWAITING_DECISION: ["en attente de décision", "awaiting a decision"],
  // hubs
  area: ["Zone", "Area"],
  areaCaption: ["Rayon autour du centre et codes postaux", "Radius around the centre, and postcodes"],
  radius: ["rayon", "radius"],
  postcodes: ["Codes postaux", "Postcodes"],
  noRadius: ["Pas de rayon : les codes postaux seuls.", "No radius: the postcodes only."],
  rules: ["Règles", "Rules"],
  rulesVersion: ["version", "version"],
  history: ["Historique des règles", "Rules history"],
  changed: ["Changements", "Changes"],
  firstVersion: ["Première version, à la création du pôle.", "First version, at the hub's creation."],
  automatic: ["automatique", "automatic"],
  changeRules: ["Modifier les règles", "Change the rules"],
  rulesSaved: ["Nouvelle version des règles enregistrée.", "New version of the rules saved."],
  rulesUnchanged: ["Aucune règle n'a changé : pas de nouvelle version.", "No rule changed: no new version."],
  r_admissionMode: ["Mode d'admission", "Admission mode"],
  r_nonCompetition: ["Un membre par métier", "One member per profession"],
  r_nonCompetitionLiftAt: ["Levée automatique à (membres)", "Lifts by itself at (members)"],
  r_nonCompetitionLifted: ["Règle levée", "Rule lifted"],
  r_objectionWindowDays: ["Fenêtre d'objection (jours)", "Objection window (days)"],
  r_maxVisits: ["Visites avant candidature", "Visits before applying"],
  r_facilitatorTermDays: ["Mandat d'animation (jours)", "Facilitator term (days)"],
  r_facilitatorTermMeetups: ["Mandat d'animation (rencontres)", "Facilitator term (meetups)"],
  r_referralsMeetingDays: [
    "Recommandations entre membres qui se sont vus (jours)",
    "Referrals only between members who met (days)",
  ],
  m_COOPTATION: ["cooptation", "co-optation"],
  m_APPROVAL: ["approbation", "approval"],
  m_OPEN: ["ouvert", "open"],
  k_NEIGHBOURHOOD: ["cercle de quartier", "neighbourhood circle"],
  k_TRADE_CLUB: ["club métier", "trade club"],
  k_REGIONAL_CLUB: ["club régional", "regional club"],
  emptyMeansOff: ["vide : désactivé", "empty: off"],
  coAdmins: ["Co-administrateurs", "Co-admins"],
  // roster
  facilitator: ["Animateur·rice", "Facilitator"],
  termEnds: ["Fin du mandat : ", "Term ends: "],
  nobody: ["Personne pour l'instant.", "Nobody yet."],
  volunteers: ["Volontaires, dans l'ordre", "Volunteers, in order"],
  moveUp: ["Monter", "Move up"],
  moveDown: ["Descendre", "Move down"],
  swap: ["Échanger deux tours", "Swap two turns"],
  swapDo: ["Échanger", "Swap"],
  first: ["Premier", "First"],
  second: ["Second", "Second"],
  handOver: ["Passer la main au suivant", "Hand over to the next one"],
  volunteer: ["Me porter volontaire", "Volunteer"],
  // meetups
  upcoming: ["À venir", "Upcoming"],
  past: ["Passées", "Past"],
  calendar: ["Calendrier", "Calendar"],
  rsvps: ["Réponses", "Answers"],
  seated: ["inscrit·e·s", "seated"],
  waitlist: ["Liste d'attente", "Waitlist"],
  maybe: ["peut-être", "maybe"],
  declined: ["non", "no"],
  capacity: ["places", "seats"],
  attendance: ["Présences", "Attendance"],
  takeAttendance: ["Prendre les présences", "Take attendance"],
  saveAttendance: ["Enregistrer les présences", "Save the attendance"],
  attendanceSaved: ["Présences enregistrées.", "Attendance saved."],
  a_PRESENT: ["présent·e", "present"],
  a_LATE: ["en retard", "late"],
  a_ABSENT: ["absent·e", "absent"],
  a_EXCUSED: ["excusé·e", "excused"],
  a_REPLACED: ["remplacé·e", "replaced"],
  a_VISITOR: ["visiteur", "visitor"],
  substitute: ["Remplaçant·e", "Substitute"],
  closeMeetup: ["Clore la rencontre", "Close the meetup"],
  closeIntro: [
    "Une rencontre ne se clôt qu'avec la date de la suivante. Le rythme du pôle la propose.",
    "A meetup closes only with the next one's date. The hub's rhythm proposes it.",
  ],
  nextDate: ["Date de la prochaine rencontre", "Date of the next meetup"],
  nextVenue: ["Lieu de la prochaine rencontre", "Venue of the next meetup"],
  proposed: ["proposée par le rythme : ", "proposed by the rhythm: "],
  notStarted: [
    "La rencontre n'a pas encore commencé : l'appel et la clôture s'ouvrent à son début.",
    "The meetup has not begun yet: the roll call and the close open at its start.",
  ],
  closed: ["Rencontre close, la suivante est fixée.", "Meetup closed, the next one is fixed."],
  next: ["Suivante : ", "Next: "],
  missionCards: ["Cartes mission", "Mission cards"],
  openCards: ["Cartes en cours", "Cards in progress"],
  doneAt: ["faite", "done"],
  datePolls: ["Sondages de date", "Date polls"],
  voters: ["votants", "voters"],
  chooseSlot: ["Retenir cette date", "Choose this date"],
  pollClosed: ["Sondage clos : rencontre programmée.", "Poll closed: meetup scheduled."],
  s_SCHEDULED: ["programmée", "scheduled"],
  s_HELD: ["tenue", "held"],
  s_CLOSED: ["close", "closed"],
  s_CANCELLED: ["annulée", "cancelled"],
  s_OPEN: ["ouvert", "open"],
  venue: ["Lieu", "Venue"],
  workshop: ["atelier", "workshop"],
  pv_yes: ["oui", "yes"],
  pv_ifNeedBe: ["si besoin", "if need be"],
  pv_no: ["non", "no"],
  // results
  ledger: ["Registre des recommandations", "Referral ledger"],
  giver: ["Donneur", "Giver"],
  dir_ALL: ["Tout", "All"],
  dir_RECEIVED: ["Reçues", "Received"],
  dir_GIVEN: ["Données", "Given"],
  receiver: ["Receveur", "Receiver"],
  about: ["Objet", "About"],
  warmth: ["Chaleur", "Warmth"],
  value: ["Valeur", "Value"],
  thanks: ["Merci pour les affaires conclues", "Thanks for closed business"],
  valueThanked: ["Valeur remerciée", "Value thanked"],
  network90: ["Le réseau sur 90 jours", "The network over 90 days"],
  my90: ["Mes résultats sur 90 jours", "My results over 90 days"],
  meetupsAttended: ["Présences", "Attendances"],
  referralsGiven: ["Recommandations données", "Referrals given"],
  referralsWon: ["Recommandations gagnées", "Referrals won"],
  oneToOnes: ["Tête-à-tête", "One-to-ones"],
  missionsDone: ["Missions faites", "Missions done"],
  engagement: ["Engagement", "Engagement"],
  core: ["Le noyau", "The core"],
  drifting: ["Ils s'éloignent", "Drifting away"],
  lights: ["Feux", "Lights"],
  lightsChart: ["Feux d'engagement des membres", "Members' engagement lights"],
  l_GREEN: ["vert", "green"],
  l_AMBER: ["orange", "amber"],
  l_RED: ["rouge", "red"],
  me_MEETUPS: ["Rencontres", "Meetups"],
  me_REFERRALS_GIVEN: ["Recommandations", "Referrals"],
  me_ONE_TO_ONES: ["Tête-à-tête", "One-to-ones"],
  rs_GIVEN: ["donnée", "given"],
  rs_ACCEPTED: ["acceptée", "accepted"],
  rs_DECLINED: ["déclinée", "declined"],
  rs_CONTACTED: ["contacté", "contacted"],
  rs_WON: ["gagnée", "won"],
  rs_LOST: ["perdue", "lost"],
  // data
  webhooks: ["Webhooks", "Webhooks"],
  addWebhook: ["Ajouter un point de réception", "Add an endpoint"],
  url: ["Adresse (URL)", "Address (URL)"],
  eventTypes: ["Types d'événements (préfixes, séparés par des virgules)", "Event types (prefixes, comma-separated)"],
  description: ["Description", "Description"],
  secretOnce: [
    "Le secret de signature, affiché cette seule fois : copiez-le maintenant.",
    "The signing secret, shown this once: copy it now.",
  ],
  rotateSecret: ["Nouveau secret de signature", "New signing secret"],
  enabled: ["actif", "enabled"],
  disabled: ["désactivé", "disabled"],
  enable: ["Activer", "Enable"],
  disable: ["Désactiver", "Disable"],
  deliveries: ["Journal des livraisons", "Delivery log"],
  attempts: ["tentatives", "attempts"],
  replay: ["Renvoyer", "Send again"],
  replayed: ["Renvoyée.", "Sent again."],
  event: ["Événement", "Event"],
  when: ["Quand", "When"],
  ds_PENDING: ["en attente", "pending"],
  ds_DELIVERED: ["livrée", "delivered"],
  ds_FAILED: ["échouée", "failed"],
  ds_SKIPPED: ["ignorée", "skipped"],
  apiKeys: ["Clés d'API", "API keys"],
  keyName: ["Nom de la clé", "Key name"],
  scopes: ["Droits", "Scopes"],
  sc_EVENTS_READ: ["lire le flux d'événements", "read the event stream"],
  sc_REPORTS_READ: ["lire les rapports", "read the reports"],
  sc_EXPORT: ["exporter", "export"],
  createKey: ["Créer une clé", "Create a key"],
  keySecretOnce: [
    "La clé, affichée cette seule fois : copiez-la maintenant.",
    "The key, shown this once: copy it now.",
  ],
  prefix: ["Début", "Prefix"],
  lastUsed: ["Dernier usage", "Last used"],
  revoked: ["révoquée", "revoked"],
  erasures: ["Demandes d'effacement", "Erasure requests"],
  erasureHint: [
    "Efface les données personnelles d'un membre (nom, e-mail, fiche, lieux, textes) ; son compte est fermé.",
    "Erases a member's personal data (name, e-mail, card, places, texts); their account is closed.",
  ],
  erasureSure: ["Je confirme : c'est définitif", "I confirm: this cannot be undone"],
  requestErasure: ["Effacer ce membre", "Erase this member"],
  soleAdminNotOffered: [
    " n'est pas proposé·e : seul·e administrateur·rice du réseau, son effacement laisserait le réseau sans administrateur. Nommez d'abord un autre administrateur (page Membres).",
    " is not offered: the network's sole admin, whose erasure would leave the network without one. Make another member an admin first (Members page).",
  ],
  erased: ["Données effacées.", "Data erased."],
  er_REQUESTED: ["effacement demandé", "erasure requested"],
  er_COMPLETED: ["effacement fait", "erasure done"],
  onDate: ["le", "on"],
  exports: ["Exports", "Exports"],
  startExport: ["Exporter les données du réseau", "Export the network's data"],
  exportStarted: ["Export lancé.", "Export started."],
  network: ["réseau", "network"],
  mine: ["mes données", "my data"],
  progress: ["Avancement", "Progress"],
  download: ["Télécharger", "Download"],
  ex_QUEUED: ["en file", "queued"],
  ex_RUNNING: ["en cours", "running"],
  ex_READY: ["prêt", "ready"],
  ex_FAILED: ["échoué", "failed"],
  ex_EXPIRED: ["expiré", "expired"],
  // errors
  errorTitle: ["Refusé", "Refused"],
  e_invalid_input: ["Une valeur ne convient pas", "A value does not fit"],
  e_not_found: ["Introuvable dans ce réseau", "Not found in this network"],
  e_unauthenticated: ["Session expirée : reconnectez-vous", "Session expired: sign in again"],
  e_forbidden: ["Vous n'avez pas le droit de faire cela", "You may not do this"],
  e_conflict: ["Déjà fait, ou changé entre-temps", "Already done, or changed meanwhile"],
  e_rule_violation: ["Une règle du réseau s'y oppose", "A rule of the network refuses this"],
  e_invalid_credentials: ["Adresse e-mail ou mot de passe incorrect", "Wrong e-mail address or password"],
  e_invalid_token: ["Lien ou jeton invalide ou expiré", "Invalid or expired link or token"],
  e_rate_limited: ["Trop d'essais : patientez un peu", "Too many attempts: wait a little"],
  e_unavailable: ["Service momentanément indisponible", "Service unavailable for now"],
  e_internal: ["Erreur interne", "Internal error"],
  e_network: ["Le serveur ne répond pas", "The server does not answer"],
  e_unknown_tenant: ["Aucun réseau ne porte cet identifiant", "No network has this slug"],
  rule_next_date_required: [
    "Une rencontre ne se clôt qu'avec la date de la suivante",
    "A meetup closes only with the next one's date",
  ],
  rule_non_competition: [
    "La règle « un par métier » s'applique : une exception doit être motivée",
    "The one-per-profession rule stands: an exception needs a reason",
  ],
  rule_not_started: ["La rencontre n'a pas encore commencé", "The meetup has not begun"],
  rule_too_early: ["Trop tôt pour cela", "Too early for this"],
  rule_last_tenant_admin: ["Il faut au moins un administrateur", "At least one admin is needed"],
  rule_last_co_admin: ["Un pôle garde au moins un co-administrateur", "A hub keeps at least one co-admin"],
  rule_facilitator_roster: ["Le tableau d'animation ne le permet pas", "The facilitator roster does not allow it"],
  rule_objection_window: ["La fenêtre d'objection ne le permet pas", "The objection window does not allow it"],
  rule_meetup_closed: ["La rencontre est déjà close", "The meetup is already closed"],
  rule_meetup_cancelled: ["La rencontre est annulée", "The meetup is cancelled"],
  rule_area: ["Hors de la zone du pôle", "Outside the hub's area"],
  rule_max_endpoints: ["Trop de points de réception", "Too many endpoints"],
  apiSays: ["Message de l'API : ", "The API says: "],
};

let lang = "fr";

export function setLang(l) {
  lang = l === "en" || l === "EN" ? "en" : "fr";
  document.documentElement.lang = lang;
}

export function getLang() {
  return lang;
}

export function t(key) {
  const entry = M[key];
  if (!entry) return key;
  return lang === "en" ? entry[1] : entry[0];
}

// The same text as a label (a field's, a column's, a term's): with a
// capital letter, as every label of the console starts.
export function tc(key) {
  const text = t(key);
  return text.charAt(0).toLocaleUpperCase(lang) + text.slice(1);
}

// An API error in the user's language: a headline from its rule or code,
// and the message it carries.
export function errorText(err) {
  const code = String((err && err.code) || "").toLowerCase();
  const rule = err && err.rule;
  let head = (rule && M["rule_" + rule]) ? t("rule_" + rule) : null;
  if (!head) head = M["e_" + code] ? t("e_" + code) : t("errorTitle");
  return { head, message: (err && err.message) || "", code, rule, field: err && err.field };
}

const locales = { fr: "fr-FR", en: "en-GB" };

// Sorting as the user's language does (French: "Émilie" with the E's,
// accents and case after the letters).
let collator = null;
let collatorLang = null;
export function collate(a, b) {
  if (collatorLang !== lang) {
    collator = new Intl.Collator(locales[lang], { numeric: true });
    collatorLang = lang;
  }
  return collator.compare(a || "", b || "");
}

// A list sorted by a text of each item (by default its displayName).
export function sortedBy(list, key = (x) => x.displayName) {
  return [...list].sort((a, b) => collate(key(a), key(b)));
}

export function fmtDateTime(iso, timeZone) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Intl.DateTimeFormat(locales[lang], {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: timeZone || undefined,
  }).format(d);
}

export function fmtDate(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locales[lang], { dateStyle: "medium" }).format(new Date(iso));
}

// A LocalDateTime ("2026-03-12T12:30:00") as written, in words.
export function fmtLocal(local) {
  if (!local) return "";
  const [d, time] = local.split("T");
  const [y, m, day] = d.split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, day));
  const words = new Intl.DateTimeFormat(locales[lang], {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  }).format(date);
  return `${words}, ${(time || "").slice(0, 5)}`;
}

export function fmtMoney(m) {
  if (!m) return "";
  try {
    return new Intl.NumberFormat(locales[lang], { style: "currency", currency: m.currency }).format(
      Number(m.amount),
    );
  } catch (e) {
    return `${m.amount} ${m.currency}`;
  }
}

// "3 j 4 h" / "3 d 4 h" until `iso`, or null once passed.
export function fmtCountdown(iso, now) {
  const ms = Date.parse(iso) - now;
  if (!(ms > 0)) return null;
  const mins = Math.floor(ms / 60000);
  const d = Math.floor(mins / 1440);
  const h = Math.floor((mins % 1440) / 60);
  const m = mins % 60;
  const dayUnit = lang === "en" ? "d" : "j";
  if (d > 0) return `${d} ${dayUnit} ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min`;
}
