1:[["children",{"s":"__PAGE__","h":176}]]
0:{"b":"1qYexQiVPL_EvsYFICom_","t":{"t":{"s":"","h":80,"c":"$Q1"}}}
