# The web listener's protocol layer (HTTP/1.1 and WebSocket, sans-I/O) and the browser
# client's static files. Nothing here touches a socket.
