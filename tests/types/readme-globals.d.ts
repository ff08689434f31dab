// The app's own functions and values that the README examples call, declared
// so the examples compile under `tsc --strict` exactly as written.
declare function showOffline(): void;
declare function refreshSession(): Promise<{ accessToken: string }>;
declare function showLogin(): void;
declare function reloadListFromRest(): void;
declare function refetchEverything(): void;
declare function refetch(): void;
declare function addTeamAnswer(answer: import('tidings').TeamAnswer): void;
declare function removeTeamAnswers(ids: number[]): void;
declare function setBadge(count: number): void;
declare function toast(title: string, body: string): void;
declare function removeNotification(id: number): void;
declare function setOnline(online: boolean): void;
declare function setProgress(percent: number | undefined, message: string | undefined): void;
declare function showVideo(url: string | undefined): void;
declare function showError(message: string | undefined): void;
declare function updateTask(object: import('tidings').WsMessage['object']): void;
declare function upsertFile(object: import('tidings').WsMessage['object']): void;
declare function Answers(): import('react').ReactElement;
declare const handlers: Array<(message: import('tidings').WSMessage) => void>;
declare const token: string;
declare const projectId: number;
declare const answer: import('tidings').TeamAnswer;
declare const m: import('tidings').Manager;
declare function append(text: string): void;
declare const question: string;
declare const Item: { parse(value: unknown): { id: string; n: number } };
